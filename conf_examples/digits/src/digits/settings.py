"""Project settings.

The only change from the Kedro defaults is the configuration loader: ``AimConfigLoader``
reads the ``aim:`` blocks of ``catalog.yml`` and the run-level settings of ``aim.yml``.
The tracking hook of kedro-aim-cfg registers itself through the ``kedro.hooks`` entry
point, so it is not listed in ``HOOKS``.
"""

from kedro_aim_cfg import AimConfigLoader

CONFIG_LOADER_CLASS = AimConfigLoader

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
