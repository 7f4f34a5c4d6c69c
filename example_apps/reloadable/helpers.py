"""A module the app imports: edits here reload the app like edits to app.py do."""


def greeting(name: str) -> str:
    return f"Hello, {name}!"
