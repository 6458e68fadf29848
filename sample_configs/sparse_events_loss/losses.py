"""The custom loss of user report 001, ported from Keras 2 (`K.sum`, `K.log`) to keras.ops.

Kept as the user wrote it, bugs included: a Python `if` on a tensor (line 11) and logs of
y_pred and 1 - y_pred that nothing keeps away from 0 (lines 12 and 14).
"""
from keras import ops


def sparse_penalty_logits(y_true, y_pred):
    penalty = 10
    if y_true != 0:
        loss = -penalty * ops.sum((y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))
    else:
        loss = -ops.sum((y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred)))
    return loss
