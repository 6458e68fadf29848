import keras
from keras import ops


@keras.saving.register_keras_serializable(package="families")
def log_loss(y_true, y_pred):
    return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))
