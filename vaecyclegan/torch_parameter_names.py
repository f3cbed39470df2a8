"""Parameter names that PyTorch accepts, for networks whose layer names
hold dots.

Keras' PyTorch backend registers each variable as a `torch.nn.Parameter`
under the variable's path, and torch refuses a dot in a parameter name.
ESRGAN's layer names hold dots (`RRDB_trunk.7.RDB2.conv4`), kept on every
backend so that the weight files are the same; a layer or model that may
hold such variables (the RRDB-Net, its convolutions, and the trainers that
own it) mixes in `TorchParameterNames`, which on that backend alone
registers them with the dots made underscores. Elsewhere it changes
nothing.
"""

import keras


def torch_parameter_name(path):
    """The name Keras' PyTorch backend registers a variable's parameter
    under in these networks: its path, with ESRGAN's dots made underscores."""
    return path.replace(".", "_")


def _on_keras3_torch():
    # Keras 2 (tf-keras, which the tests use to read and write the weight
    # files) has a `_track_variables` of its own: the override is Keras 3's.
    return int(keras.__version__.split(".")[0]) >= 3 and keras.backend.backend() == "torch"


if _on_keras3_torch():

    class TorchParameterNames:
        """Keras' `TorchLayer` parameter registration (keras/src/backend/
        torch/layer.py), keyed by `torch_parameter_name(variable.path)`
        instead of the path itself; the variables are the same objects."""

        def _track_variables(self):
            import torch

            self._torch_params = torch.nn.ParameterDict({
                torch_parameter_name(variable.path): variable.value
                for variable in self.variables})

        def _post_track_variable(self, variable):
            if hasattr(self, "_torch_params"):
                key = torch_parameter_name(variable.path)
                if key not in self.torch_params:
                    self.torch_params[key] = variable.value

        def _post_untrack_variable(self, variable):
            if hasattr(self, "_torch_params"):
                key = torch_parameter_name(variable.path)
                if key in self.torch_params:
                    self.torch_params.pop(key)

else:

    class TorchParameterNames:
        """Nothing to change outside Keras 3's PyTorch backend."""
