"""The `vgzoo` TensorBoard tab: a matched pair's gradient flow side by side.

Installed with the package through the `tensorboard_plugins` entry point
(`vgzoo.tensorboard_plugin.plugin:VgzooLoader`), so `tensorboard --logdir
tensorboard_logs` shows the tab on any folder with vgzoo runs. The routes
(`plugin.py`) read through TensorBoard's data provider; `pairs.py` finds a
run's partner and `depth.py` puts its layers in depth order; `static/` holds
the page (an ES module and a style sheet, nothing fetched from the network).

Importing this package does not import TensorFlow or Keras.
"""
PLUGIN_NAME = "vgzoo"
# Written by the observed step on recorded steps of sequence models: ||dL/dx_t|| per timestep.
TIMESTEP_TAG = "grad_through_time/norms"
