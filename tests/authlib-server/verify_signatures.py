"""Verifies JWS compact signatures with Python's `cryptography` alone: a
verifier outside the RustCrypto stack that made them.

Reads a JSON list of {"alg", "jwt", "key"} on standard input, where "key" is
a public key in PEM or, for HS*, the shared secret; prints a JSON object
mapping each entry's index to "ok" or the reason it failed.
"""

import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def b64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(alg, jwt, key):
    header, payload, signature = jwt.split(".")
    if json.loads(b64(header))["alg"] != alg:
        return "the header names another algorithm"
    data = f"{header}.{payload}".encode()
    sig = b64(signature)
    family, size = alg[:2], alg[2:]
    if family == "HS":
        mac = hmac.HMAC(key.encode(), HASHES[size]())
        mac.update(data)
        mac.verify(sig)
        return "ok"
    public = serialization.load_pem_public_key(key.encode())
    if family == "RS":
        public.verify(sig, data, padding.PKCS1v15(), HASHES[size]())
    elif family == "PS":
        digest = HASHES[size]()
        # RFC 7518 section 3.5: MGF1 with the same hash, salt as long as it.
        public.verify(sig, data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
    elif family == "ES":
        half = len(sig) // 2
        r, s = int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
        public.verify(encode_dss_signature(r, s), data, ec.ECDSA(HASHES[size]()))
    elif alg == "EdDSA":
        public.verify(sig, data)
    else:
        return f"unknown algorithm {alg}"
    return "ok"


def main():
    results = {}
    for index, entry in enumerate(json.load(sys.stdin)):
        try:
            results[index] = verify(entry["alg"], entry["jwt"], entry["key"])
        except InvalidSignature:
            results[index] = "the signature does not verify"
        except Exception as error:  # a verdict, never a crash
            results[index] = f"{type(error).__name__}: {error}"
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
