"""The application layer, the only part of softreg.model that reads data: the config vocabulary, training a
dataset to a model file, evaluating and predicting with a saved model, checkpoints and model files."""
