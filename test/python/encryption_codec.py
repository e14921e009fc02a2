"""The avatar-consent payload encryption, written from docs/integrators.md ("Encrypted payloads").

Each payload is encrypted whole: the protobuf encoding of the original Payload (metadata and data)
is sealed with AES-256-GCM under a 12-byte random nonce, no associated data. The result is a
Payload with metadata {"encoding": "binary/encrypted", "encryption-key-id": <key ID>} and data
nonce || ciphertext || 16-byte tag. Keys come in the worker's own format, AVATAR_CONSENT_CODEC_KEYS:
"id:base64key,id:base64key", the first (or AVATAR_CONSENT_CODEC_ACTIVE_KEY) encrypting.
"""

from __future__ import annotations

import base64
import os
from typing import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


def parse_keys(text: str) -> dict[str, bytes]:
    """Parses "id:base64,id:base64" (standard or URL-safe base64) into 32-byte keys by ID."""
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(part.strip() for part in text.split(",")):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError(f"entry {position + 1} is not in the form id:base64key")
        encoded = encoded.strip().replace("-", "+").replace("_", "/")
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        if len(key) != 32:
            raise ValueError(f'key "{key_id}" must decode to 32 bytes')
        keys[key_id.strip()] = key
    if not keys:
        raise ValueError("no keys")
    return keys


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], active_key_id: str | None = None) -> None:
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active_key_id or next(iter(keys))
        if self._active not in self._ciphers:
            raise ValueError(f'active key "{self._active}" is not configured')

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "EncryptionCodec":
        return cls(parse_keys(env["AVATAR_CONSENT_CODEC_KEYS"]), env.get("AVATAR_CONSENT_CODEC_ACTIVE_KEY") or None)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(payload) for payload in payloads]

    def _encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: self._active.encode()},
            data=nonce + sealed,
        )

    def _decrypt(self, payload: Payload) -> Payload:
        # What is not ours (plain payloads of older histories) passes through, as in the worker.
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ValueError(f'payload encrypted with codec key "{key_id}", which is not configured')
        data = payload.data
        return Payload.FromString(cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None))

