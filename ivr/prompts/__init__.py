"""Mandarin voice prompts: catalog (text), build (audio), manifest (durations)."""
