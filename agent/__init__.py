"""edge-agent: keeps a video-conference site ready and tells the centre."""

__version__ = "0.1.0"
