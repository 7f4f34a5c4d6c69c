"""What is served: Flask's ``--app`` grammar (:mod:`.grammar`), its resolution once in a child
interpreter (:mod:`.resolve`), and the ``.flaskenv``/``.env`` files ``flask run`` reads
(:mod:`.dotenv`)."""

from pytest_flaskserve.appspec.grammar import (
    DEFAULT_FILES,
    AppSpec,
    ResolvedApp,
    default_spec,
    has_main_guard,
    locate_module_file,
    parse_spec,
    prepare_import,
    render_arguments,
    script_entry,
)

__all__ = ["DEFAULT_FILES", "AppSpec", "ResolvedApp", "default_spec", "has_main_guard",
           "locate_module_file", "parse_spec", "prepare_import", "render_arguments", "script_entry"]
