"""Errors raised by the protocol core.

    ProtocolError
    ├── MalformedData        bytes or fields that do not parse / fail validation
    ├── SignatureInvalid     a signature does not verify with the expected key
    ├── DecryptionFailed     ciphertext could not be opened (one error for every cause)
    ├── FrankingInvalid      a franking commitment or the server's franking tag does not check
    ├── Mismatch             what two sides compare differs (scanned safety-number QR, SAS MAC)
    └── IllegalState         local misuse: a step this state machine does not allow right now

Messages never carry key or plaintext bytes.
"""

__all__ = [
    "DecryptionFailed",
    "FrankingInvalid",
    "IllegalState",
    "MalformedData",
    "Mismatch",
    "ProtocolError",
    "SignatureInvalid",
]


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


class FrankingInvalid(ProtocolError):
    """A franking commitment does not open to the reported payload, or a server tag is not ours.

    A failed report is refused as a whole: which field was wrong is not said.
    """


class Mismatch(ProtocolError):
    """Two devices compared verification values and they differ: possibly a man in the middle."""


class IllegalState(ProtocolError):
    """The local caller asked a state machine for a step it does not allow now (a bug, not the peer).

    Like h11's LocalProtocolError: an object that failed or was cancelled raises this forever after.
    """
