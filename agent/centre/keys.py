"""The centre's command-signing key pair on disk: made by `centre keygen` (and the simulated
site), read by `centre send` and the dashboard. The site side holds only public keys
(`[commands] keys`, read by agent.commands.service)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.centre.settings import ENV_KEY
from agent.errors import ConfigError
from agent.messages import message


def write_key_pair(stem: Path) -> str:
    """STEM.key (PEM, mode 600) and STEM.pub (base64, as [[commands.keys]] wants it); returns
    the public key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    from agent.contract.envelope import public_key_b64  # noqa: PLC0415

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    stem.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(stem.with_suffix(".key"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = public_key_b64(key.public_key())
    stem.with_suffix(".pub").write_text(public + "\n")
    return public


def load_private_key(path_text: str | None) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (  # noqa: PLC0415
        Ed25519PrivateKey,
    )
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        load_pem_private_key,
    )

    path_text = path_text or os.environ.get(ENV_KEY)
    if not path_text:
        raise ConfigError(
            message("centre.key.none"), message("centre.key.none_hint", variable=ENV_KEY)
        )
    path = Path(path_text)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            message("centre.key.unreadable", path=str(path), error=str(exc)),
            message("centre.key.unreadable_hint"),
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            message("centre.key.not_ed25519", path=str(path)),
            message("centre.key.not_ed25519_hint"),
        )
    return key
