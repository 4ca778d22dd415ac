"""Reference LangGraph chat service (package name `src` so it is served as `src.api.app:app`)."""
