"""Receipt and trip-attestation signatures: registered public JWKs and compact JWS.

Merchants' point-of-sale systems and transit operators register a public Ed25519 (OKP) or P-256
(EC) key and sign compact JWS with it. This module only validates keys, parses tokens and checks
signatures (with joserfc); the caller looks the key up by ``kid``, matches the issuer, checks
``iat`` and revocation.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicNumbers
from joserfc import jws
from joserfc.errors import (
    BadSignatureError,
    InvalidKeyCurveError,
    JoseError,
    KeyParameterError,
    SecurityWarning,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import ECKey, Key, OKPKey
from joserfc.jwk import import_key as _import_jose_key
from joserfc.jwk import thumbprint as _rfc7638_thumbprint
from joserfc.jws import JWSRegistry

from carbonpuhui.errors import FieldError, UnprocessableError
from carbonpuhui.i18n import N_

# Accepted header algs per key type; "Ed25519" is RFC 9864's fully-specified name for EdDSA on Ed25519.
ALGORITHMS = {"OKP": ("EdDSA", "Ed25519"), "EC": ("ES256",)}
_CURVES = {"OKP": "Ed25519", "EC": "P-256"}
_COORDINATES = {"OKP": ("x",), "EC": ("x", "y")}
_ACCEPTED = frozenset(alg for algs in ALGORITHMS.values() for alg in algs)

MAX_TOKEN_CHARS = 16 * 1024
MAX_HEADER_CHARS = 1024  # base64url characters; a real header is about 100
MAX_SIGNATURE_CHARS = 1024
MAX_KID_CHARS = 256
MAX_JWK_BYTES = 4096  # as JSON; this bounds the member count too
_SHOWN_ALG_CHARS = 40  # an unaccepted alg is echoed in the message, so only its start

# Members that only a private (or symmetric) key has: oct "k", EC/OKP "d", RSA "p", "q", ...
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_OPS = frozenset({"sign", "verify"})

# --- messages ------------------------------------------------------------------------------------

_MALFORMED = N_("The {field} is not a well-formed compact JWS.")
_UNSUPPORTED = N_("The {field} is signed with {alg}, which is not accepted; use EdDSA (Ed25519) or ES256.")
_ALG_NOT_FOR_KEY = N_("The {field} is signed with {alg}, which does not fit the {kty} key {kid}.")
_BAD_SIGNATURE = N_("The {field}'s signature does not verify with the key {kid}.")
_INVALID_JWK = N_("The jwk is not an accepted public signing key.")

_HINT_SHAPE = N_("Send a compact JWS: three base64url parts separated by dots, at most 16 KiB.")
_HINT_JSON = N_("The JWS header and payload must each be a UTF-8 JSON object without duplicate members.")
_HINT_HEADER = N_("The JWS header needs string alg and kid members and must not use crit or b64.")
_HINT_ALG = N_("Sign with EdDSA (or Ed25519) for an OKP key, or ES256 for an EC P-256 key.")
_HINT_SIGNATURE = N_("The signature does not match the header and payload: the JWS was altered or signed "
                     "with another key.")
_HINT_KEY = N_("Register a public Ed25519 (OKP) or P-256 (EC) key without private members.")
_HINT_PRIVATE = N_("The JWK contains private key members; register only the public key.")
_HINT_POINT = N_("The key's coordinates must be base64url encodings of a valid point on its curve.")
_HINT_USE = N_("The key's use, key_ops or alg members do not allow verifying EdDSA or ES256 signatures.")
_HINT_SIZE = N_("The JWK is larger than 4 KiB.")


def _malformed(field: str, hint: str) -> UnprocessableError:
    return UnprocessableError(_MALFORMED, reason="malformed_jws",
                              errors=[FieldError(field=field, message=hint)], field=field)


def _invalid_jwk(hint: str) -> UnprocessableError:
    return UnprocessableError(_INVALID_JWK, reason="invalid_jwk", errors=[FieldError(field="jwk", message=hint)])


# --- values --------------------------------------------------------------------------------------


class RegisteredKey(msgspec.Struct, frozen=True, kw_only=True):
    kid: str  # the RFC 7638 JWK thumbprint (base64url SHA-256) of the public key
    kty: str  # "OKP" or "EC"
    jwk: dict[str, str]  # the public members only, normalised (kty, crv, x[, y]); kid/alg/use stripped


class Unverified(msgspec.Struct, frozen=True, kw_only=True):
    header: dict[str, object]
    claims: dict[str, object]
    kid: str
    alg: str


# --- strict decoding -----------------------------------------------------------------------------

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url_decode(text: str) -> bytes:
    """Unpadded base64url, canonical only: one byte string has exactly one encoding (as joserfc
    checks it too), so a token cannot be re-spelled with other trailing bits."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url_encode(raw) != text:
        raise ValueError("non-canonical base64url")
    return raw


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two "iss" or "kid" members could be read differently by another parser: refuse them.
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate member {name!r}")
        out[name] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The UTF-8 JSON object in ``raw``, or None. Lone surrogates are refused too: they could not
    be stored or shown later."""
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        if not isinstance(value, dict):
            return None
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeError are ValueErrors
        return None
    return value


# --- parsing without verifying -------------------------------------------------------------------


def peek(token: object, field: str) -> Unverified:
    """Parse a compact JWS without verifying it, to find the kid (and iss) for the key lookup.
    Refuses (422) with reason ``malformed_jws`` or, for an alg no key type accepts,
    ``unsupported_algorithm``."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise _malformed(field, _HINT_SHAPE)
    parts = token.split(".")
    if len(parts) != 3 or len(parts[0]) > MAX_HEADER_CHARS or len(parts[2]) > MAX_SIGNATURE_CHARS:
        raise _malformed(field, _HINT_SHAPE)
    try:
        header_raw, payload_raw = _b64url_decode(parts[0]), _b64url_decode(parts[1])
        _b64url_decode(parts[2])
    except ValueError:
        raise _malformed(field, _HINT_SHAPE) from None
    header = _json_object(header_raw)
    if header is None:
        raise _malformed(field, _HINT_JSON)
    # crit names extensions we would have to understand; b64 false (RFC 7797) signs the payload
    # unencoded, so the signed bytes would not be the claims we read.
    if "crit" in header or header.get("b64", True) is not True:
        raise _malformed(field, _HINT_HEADER)
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _malformed(field, _HINT_HEADER)
    if alg not in _ACCEPTED:  # before the kid: "alg": "none" tokens usually have none
        raise UnprocessableError(_UNSUPPORTED, reason="unsupported_algorithm",
                                 errors=[FieldError(field=field, message=_HINT_ALG)],
                                 field=field, alg=alg[:_SHOWN_ALG_CHARS])
    kid = header.get("kid")
    # Every kid we issue is a base64url thumbprint: anything else (a NUL, say) is no key of ours and
    # must not reach the database.
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_CHARS or not _B64URL.fullmatch(kid):
        raise _malformed(field, _HINT_HEADER)
    claims = _json_object(payload_raw)
    if claims is None:
        raise _malformed(field, _HINT_JSON)
    return Unverified(header=header, claims=claims, kid=kid, alg=alg)


# --- verifying -----------------------------------------------------------------------------------

# One registry per key type, allowing only that type's algs: the alg comes from the token, and
# must never pick "none", HMAC (keyed with our public key) or another curve.
_REGISTRIES = {kty: JWSRegistry(algorithms=list(algs), strict_check_header=False)
               for kty, algs in ALGORITHMS.items()}
for _registry in _REGISTRIES.values():
    _registry.max_header_length = MAX_HEADER_CHARS
    _registry.max_signature_length = MAX_SIGNATURE_CHARS
    _registry.max_payload_length = MAX_TOKEN_CHARS


class _QuietEdDSA(warnings.catch_warnings):
    """joserfc warns on every use of the polymorphic "EdDSA" name, which RFC 9864 deprecates; we
    accept it on purpose (only for Ed25519 keys, where it means exactly "Ed25519")."""

    def __enter__(self) -> None:
        super().__enter__()
        warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)


@lru_cache(maxsize=1024)
def _jose_key(kty: str, members: tuple[tuple[str, str], ...]) -> Key:
    return (OKPKey if kty == "OKP" else ECKey).import_key(dict(members))


def verify(token: str, key: RegisteredKey, field: str) -> dict[str, object]:
    """Verify the JWS with the registered key and return its claims. Refuses (422) with reason
    ``malformed_jws``, ``unsupported_algorithm`` (including an alg that does not fit the key's
    type) or ``bad_signature``."""
    unverified = peek(token, field)
    if unverified.alg not in ALGORITHMS.get(key.kty, ()):
        raise UnprocessableError(_ALG_NOT_FOR_KEY, reason="unsupported_algorithm",
                                 errors=[FieldError(field=field, message=_HINT_ALG)],
                                 field=field, alg=unverified.alg, kty=key.kty, kid=key.kid)
    bad_signature = UnprocessableError(_BAD_SIGNATURE, reason="bad_signature",
                                       errors=[FieldError(field=field, message=_HINT_SIGNATURE)],
                                       field=field, kid=key.kid)
    if unverified.kid != key.kid:  # the caller looked the key up by this kid; anything else is a slip
        raise bad_signature
    jose_key = _jose_key(key.kty, tuple(sorted(key.jwk.items())))
    try:
        with _QuietEdDSA():
            jws.deserialize_compact(token, jose_key, registry=_REGISTRIES[key.kty])
    except BadSignatureError:
        raise bad_signature from None
    except (UnsupportedAlgorithmError, KeyParameterError, InvalidKeyCurveError):
        raise UnprocessableError(_ALG_NOT_FOR_KEY, reason="unsupported_algorithm",
                                 errors=[FieldError(field=field, message=_HINT_ALG)],
                                 field=field, alg=unverified.alg, kty=key.kty, kid=key.kid) from None
    except (JoseError, ValueError):
        # peek() already refuses what joserfc would; this is belt and braces.
        raise _malformed(field, _HINT_HEADER) from None
    # The claims as peek() read them strictly, from the very bytes the signature covers.
    return unverified.claims


# --- registering keys ----------------------------------------------------------------------------

# Ed25519 (RFC 8032 §5.1): p and d, for checking that a public key decodes to a point.
_P25519 = 2**255 - 19
_D25519 = -121665 * pow(121666, -1, _P25519) % _P25519
# y of the small-order points (orders 1, 2, 4, 8; libsodium's blocklist). With such a key
# OpenSSL accepts forged signatures (for the identity point, any message with R = A, S = 0).
_Y8 = int.from_bytes(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little")
_SMALL_ORDER_Y = frozenset({0, 1, _P25519 - 1, _Y8, _P25519 - _Y8})


def _valid_ed25519_point(raw: bytes) -> bool:
    """RFC 8032 §5.1.3 decoding, as a check only (OpenSSL imports any 32 bytes and fails later):
    canonical y, x² = (y² − 1) / (d·y² + 1) has a root, and not a small-order point."""
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    x_odd = raw[31] >> 7
    if y >= _P25519 or y in _SMALL_ORDER_Y:
        return False
    x2 = (y * y - 1) * pow(_D25519 * y * y + 1, -1, _P25519) % _P25519
    if x2 == 0:
        return not x_odd
    return pow(x2, (_P25519 - 1) // 2, _P25519) == 1  # Euler's criterion: x² is a square


def _coordinate(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise _invalid_jwk(_HINT_POINT)
    try:
        raw = _b64url_decode(value)
    except ValueError:
        raise _invalid_jwk(_HINT_POINT) from None
    if len(raw) != 32:  # Ed25519 x, and P-256 x and y at full length (RFC 7518 §6.2.1.2)
        raise _invalid_jwk(_HINT_POINT)
    return raw


def _check_intended_use(jwk: Mapping[str, Any], kty: str) -> None:
    use, key_ops, alg = jwk.get("use"), jwk.get("key_ops"), jwk.get("alg")
    if use is not None and use != "sig":
        raise _invalid_jwk(_HINT_USE)
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops
                                or not all(isinstance(op, str) and op in _KEY_OPS for op in key_ops)):
        raise _invalid_jwk(_HINT_USE)
    if alg is not None and alg not in ALGORITHMS[kty]:
        raise _invalid_jwk(_HINT_USE)


def register_jwk(jwk: object) -> RegisteredKey:
    """Validate a public JWK submitted for registration; refuses (422, reason ``invalid_jwk``,
    field ``jwk``) anything but a public Ed25519 OKP or P-256 EC key."""
    if not isinstance(jwk, dict) or not all(isinstance(name, str) for name in jwk):
        raise _invalid_jwk(_HINT_KEY)
    try:
        size = len(msgspec.json.encode(jwk))
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.MsgspecError):
        raise _invalid_jwk(_HINT_KEY) from None
    if size > MAX_JWK_BYTES:
        raise _invalid_jwk(_HINT_SIZE)
    if _PRIVATE_MEMBERS & jwk.keys():
        raise _invalid_jwk(_HINT_PRIVATE)
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in _CURVES or jwk.get("crv") != _CURVES[kty]:
        raise _invalid_jwk(_HINT_KEY)
    _check_intended_use(jwk, kty)
    coordinates = [_coordinate(jwk, name) for name in _COORDINATES[kty]]
    if kty == "OKP":
        if not _valid_ed25519_point(coordinates[0]):
            raise _invalid_jwk(_HINT_POINT)
        public = {"kty": "OKP", "crv": "Ed25519", "x": _b64url_encode(coordinates[0])}
    else:
        x, y = (int.from_bytes(raw, "big") for raw in coordinates)
        try:
            numbers = EllipticCurvePublicNumbers(x, y, SECP256R1()).public_key().public_numbers()
        except ValueError:  # not on the curve
            raise _invalid_jwk(_HINT_POINT) from None
        if (numbers.x, numbers.y) != (x, y):  # a coordinate ≥ p that OpenSSL reduced
            raise _invalid_jwk(_HINT_POINT)
        public = {"kty": "EC", "crv": "P-256", "x": _b64url_encode(coordinates[0]),
                  "y": _b64url_encode(coordinates[1])}
    return RegisteredKey(kid=thumbprint(public), kty=kty, jwk=public)


def thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an OKP or EC key (its required members only, so a
    private JWK gives its public key's thumbprint)."""
    kty = public_jwk["kty"]
    if kty not in _COORDINATES:
        raise ValueError(f"unsupported key type {kty!r}")
    members = ("crv", "kty", *_COORDINATES[kty])
    return _rfc7638_thumbprint({name: public_jwk[name] for name in members})


# --- signing (tests, the demo, and merchants' reference code) -------------------------------------


def generate_private_jwk(kty: str = "OKP") -> dict[str, str]:
    """A new Ed25519 (``OKP``) or P-256 (``EC``) private JWK."""
    if kty == "OKP":
        key: Key = OKPKey.generate_key("Ed25519", private=True)
    elif kty == "EC":
        key = ECKey.generate_key("P-256", private=True)
    else:
        raise ValueError(f"unsupported key type {kty!r}; use OKP or EC")
    return dict(key.as_dict(private=True))


def sign(claims: dict[str, Any], private_jwk: dict[str, Any], kid: str, alg: str | None = None) -> str:
    """A compact JWS of ``claims`` with header ``alg`` (by default EdDSA for OKP, ES256 for EC)
    and ``kid``."""
    key = _import_jose_key(dict(private_jwk))
    kty = key.key_type
    if kty not in _CURVES or getattr(key, "curve_name", None) != _CURVES[kty] or not key.is_private:
        raise ValueError("sign with a private Ed25519 (OKP) or P-256 (EC) JWK")
    alg = alg or ALGORITHMS[kty][0]
    if alg not in ALGORITHMS[kty]:
        raise ValueError(f"{alg} does not fit a {kty} key; use one of {', '.join(ALGORITHMS[kty])}")
    payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with _QuietEdDSA():
        return jws.serialize_compact({"alg": alg, "kid": kid}, payload, key, registry=_REGISTRIES[kty])


__all__ = [
    "ALGORITHMS", "RegisteredKey", "Unverified", "generate_private_jwk", "peek", "register_jwk", "sign",
    "thumbprint", "verify",
]
