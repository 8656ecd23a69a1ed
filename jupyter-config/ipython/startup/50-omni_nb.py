# Installed by omni-nb into {sys.prefix}/etc/ipython/startup: loads the omni_nb extension
# (%omni_draft) in every IPython kernel of this environment. It imports only omni_nb's light
# top level (no pandas, httpx or ipywidgets).
# Opt out: OMNI_NB_AUTOLOAD=0 in the environment, or c.OmniNB.autoload = False in an IPython
# config file (ipython_config.py / ipython_kernel_config.py).


def _omni_nb_autoload() -> None:
    import os

    try:
        from IPython import get_ipython
    except Exception:
        return
    shell = get_ipython()
    if shell is None:
        return
    if os.environ.get("OMNI_NB_AUTOLOAD", "").strip().lower() in ("0", "false", "no", "off"):
        return
    try:
        section = shell.config.get("OmniNB", {})
        if section.get("autoload", True) is False:
            return
        shell.extension_manager.load_extension("omni_nb")
    except Exception as exc:  # never break a kernel's start
        print(f"omni_nb: not auto-loaded ({type(exc).__name__}: {exc})")


_omni_nb_autoload()
del _omni_nb_autoload
