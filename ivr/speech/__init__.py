"""Offline speech: prompt synthesis (TTS), recognition (ASR) and audio format conversion."""
