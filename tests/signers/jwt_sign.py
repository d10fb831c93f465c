"""JWTs from PyJWT.

usage: jwt_sign.py keygen RS256|ES256      -> {"private": PEM, "public": PEM}
       jwt_sign.py sign ALG KEY CLAIMS_JSON -> {"authorization": "Bearer <jwt>"}
(KEY: the HS256 secret, or a PEM private key.)
"""
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

if sys.argv[1] == "keygen":
    if sys.argv[2] == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    print(json.dumps({"private": private, "public": public}))
else:
    alg, key, claims = sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    print(json.dumps({"authorization": "Bearer " + jwt.encode(claims, key, algorithm=alg)}))
