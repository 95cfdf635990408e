"""Errors raised by the protocol core.

    ProtocolError
    ├── MalformedData        bytes or fields that do not parse / fail validation
    ├── SignatureInvalid     a signature does not verify with the expected key
    └── DecryptionFailed     ciphertext could not be opened (one error for every cause)

Messages never carry key or plaintext bytes.
"""

__all__ = ["DecryptionFailed", "MalformedData", "ProtocolError", "SignatureInvalid"]


class ProtocolError(Exception):
    """Base class for every error of the protocol core."""


class MalformedData(ProtocolError):
    """Input bytes or fields are not what the protocol allows."""


class SignatureInvalid(ProtocolError):
    """A signature does not verify with the key it must verify with."""


class DecryptionFailed(ProtocolError):
    """Ciphertext could not be decrypted or authenticated.

    Deliberately carries no detail (like Fernet's InvalidToken): bad framing, a wrong key,
    a replay and a forged tag are indistinguishable to the caller.
    """
