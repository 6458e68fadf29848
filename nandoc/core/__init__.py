"""Plain data and logic shared by every part of nandoc; imports nothing else of nandoc."""
