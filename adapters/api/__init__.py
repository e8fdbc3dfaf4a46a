"""Closed editors behind HTTP APIs (Gemini image models, OpenAI's image edits)."""
