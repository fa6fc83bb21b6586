#!/usr/bin/env python3
"""Drives Strongroom with PyKMIP's ProxyKmipClient (an unmodified third-party client).

Usage: lifecycle.py PHASE --port P --certs DIR --name CLIENT --state FILE
  create  create an AES-256 key named after the state file, Get it twice, save id and key
  check   after a server restart: Get equals the saved key, Locate by name, Get Attributes,
          Activate, Revoke, Destroy, and Get then fails
  deny    as another client: Get, Get Attributes and Destroy of the saved id are refused,
          and Locate by its name finds nothing
  crypto  key pairs (RSA-2048, EC P-256) sign and verify; an AES key encrypts and decrypts
          (CBC with PKCS#5, server-chosen IV)
  derive  Derive Key with every method PyKMIP sends: PBKDF2 from a registered password,
          HMAC, HASH, ENCRYPT (AES-CBC) and NIST SP 800-108 counter mode from registered keys;
          each derived key (Get) equals what Python's hashlib/hmac and the `cryptography`
          package compute from the same inputs; refusals for a key without
          the Derive Key usage and for a length the method cannot give (PyKMIP cannot
          decode Link attributes; `kmip_crypto.rs` checks the links); then MAC (HMAC-SHA256,
          as Python's hmac computes it) and Get of a key wrapped by another with AES Key
          Wrap (which `cryptography`'s aes_key_unwrap opens)
  objects register an X.509 certificate and RSA (PKCS#1) and EC (X.509) public keys, Get
          them back byte for byte, Locate by object type, read their attributes, verify
          signatures made outside with the registered keys, Get a key wrapped by a
          registered RSA public key with RSA-OAEP (which `cryptography` decrypts with the
          private key), Destroy
Exits non-zero with a message on the first mismatch.
"""
import argparse
import base64
import json
import sys

try:
    from kmip.core import enums
    from kmip.core.factories import attributes as attribute_factory
    from kmip.pie.client import ProxyKmipClient
    from kmip.pie.exceptions import KmipOperationFailure
except ImportError:
    sys.exit("PyKMIP is not installed: pip install pykmip")


def client(args, name):
    # Opened by the `with` block.
    return ProxyKmipClient(
        hostname="127.0.0.1",
        port=args.port,
        cert=f"{args.certs}/{name}.crt",
        key=f"{args.certs}/{name}.key",
        ca=f"{args.certs}/ca.crt",
        config_file="/dev/null",
    )


def expect(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")


def attrs_by_name(c, uid, names):
    _, attrs = c.get_attributes(uid, names)
    return {a.attribute_name.value: a.attribute_value for a in attrs}


def name_filter(key_name):
    f = attribute_factory.AttributeFactory()
    return [f.create_attribute(enums.AttributeType.NAME, key_name)]


def refused(fn, reason):
    try:
        fn()
    except KmipOperationFailure as e:
        return e.reason == reason
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("phase", choices=["create", "check", "deny", "crypto", "derive", "objects"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--certs", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--state", required=True)
    args = p.parse_args()

    if args.phase == "create":
        key_name = "pykmip-" + args.name
        with client(args, args.name) as c:
            uid = c.create(enums.CryptographicAlgorithm.AES, 256, name=key_name)
            first = c.get(uid).value
            second = c.get(uid).value
            expect(len(first) == 32, f"key is {len(first)} bytes, not 32")
            expect(first == second, "two Gets returned different key material")
        with open(args.state, "w") as f:
            json.dump({"uid": uid, "key": first.hex(), "name": key_name}, f)
        print("created", uid)
        return

    if args.phase == "crypto":
        crypto(args)
        return
    if args.phase == "derive":
        return derive(args)
    if args.phase == "objects":
        registered_objects(args)
        return

    with open(args.state) as f:
        state = json.load(f)
    uid, key_name = state["uid"], state["name"]

    if args.phase == "check":
        with client(args, args.name) as c:
            expect(c.get(uid).value.hex() == state["key"], "key changed across the restart")
            expect(c.locate(attributes=name_filter(key_name)) == [uid], "Locate by name")
            a = attrs_by_name(c, uid, ["Cryptographic Algorithm", "Cryptographic Length", "State", "Name"])
            expect(a["Cryptographic Algorithm"].value == enums.CryptographicAlgorithm.AES, "algorithm")
            expect(a["Cryptographic Length"].value == 256, "length")
            expect(a["State"].value == enums.State.PRE_ACTIVE, f"state {a['State']}")
            expect(a["Name"].name_value.value == key_name, "name")
            c.activate(uid)
            expect(attrs_by_name(c, uid, ["State"])["State"].value == enums.State.ACTIVE, "activated")
            c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
            expect(attrs_by_name(c, uid, ["State"])["State"].value == enums.State.DEACTIVATED, "revoked")
            c.destroy(uid)
            expect(attrs_by_name(c, uid, ["State"])["State"].value == enums.State.DESTROYED, "destroyed")
            try:
                c.get(uid)
                sys.exit("FAILED: Get of a destroyed key succeeded")
            except KmipOperationFailure:
                pass
        print("checked", uid)
        return

    with client(args, args.name) as c:
        denied = enums.ResultReason.PERMISSION_DENIED
        expect(refused(lambda: c.get(uid), denied), "another client's Get was not refused")
        expect(refused(lambda: c.get_attributes(uid, ["State"]), denied), "Get Attributes not refused")
        expect(refused(lambda: c.destroy(uid), denied), "another client's Destroy was not refused")
        expect(c.locate(attributes=name_filter(key_name)) == [], "Locate showed another client's key")
    print("denied", uid)


def crypto(args):
    with client(args, args.name) as c:
        for algorithm, length, dsa in [
            (enums.CryptographicAlgorithm.RSA, 2048, enums.DigitalSignatureAlgorithm.SHA256_WITH_RSA_ENCRYPTION),
            (enums.CryptographicAlgorithm.ECDSA, 256, enums.DigitalSignatureAlgorithm.ECDSA_WITH_SHA256),
        ]:
            public, private = c.create_key_pair(
                algorithm,
                length,
                public_usage_mask=[enums.CryptographicUsageMask.VERIFY],
                private_usage_mask=[enums.CryptographicUsageMask.SIGN],
            )
            c.activate(public)
            c.activate(private)
            params = {"digital_signature_algorithm": dsa}
            message = b"signed by PyKMIP through Strongroom"
            signature = c.sign(message, uid=private, cryptographic_parameters=params)
            valid = c.signature_verify(message, signature, uid=public, cryptographic_parameters=params)
            expect(valid == enums.ValidityIndicator.VALID, f"{algorithm} signature verifies")
            invalid = c.signature_verify(b"other", signature, uid=public, cryptographic_parameters=params)
            expect(invalid == enums.ValidityIndicator.INVALID, f"{algorithm} wrong message fails")
        key = c.create(
            enums.CryptographicAlgorithm.AES,
            256,
            cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT],
        )
        c.activate(key)
        params = {
            "block_cipher_mode": enums.BlockCipherMode.CBC,
            "padding_method": enums.PaddingMethod.PKCS5,
            "random_iv": True,
        }
        plaintext = b"a database page that needs protecting"
        ciphertext, iv = c.encrypt(plaintext, uid=key, cryptographic_parameters=params)
        expect(ciphertext != plaintext and len(ciphertext) % 16 == 0, "ciphertext")
        expect(iv is not None and len(iv) == 16, "server-chosen IV")
        back = c.decrypt(ciphertext, uid=key, cryptographic_parameters=params, iv_counter_nonce=iv)
        expect(back == plaintext, "decrypts to the plaintext")
        # RSA-OAEP with SHA-256 (and KMIP's default MGF1 hash, SHA-1): PyKMIP's own request
        # round trip, then the `cryptography` package encrypting to the public key the server
        # returns, which the HSM-held private key decrypts.
        public, private = c.create_key_pair(
            enums.CryptographicAlgorithm.RSA,
            2048,
            public_usage_mask=[enums.CryptographicUsageMask.ENCRYPT],
            private_usage_mask=[enums.CryptographicUsageMask.DECRYPT],
        )
        c.activate(public)
        c.activate(private)
        oaep = {
            "cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
            "padding_method": enums.PaddingMethod.OAEP,
            "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
        }
        secret = b"a key-encryption key for a database"
        sealed, _ = c.encrypt(secret, uid=public, cryptographic_parameters=oaep)
        expect(len(sealed) == 256, "RSA-2048 ciphertext")
        expect(c.decrypt(sealed, uid=private, cryptographic_parameters=oaep) == secret, "OAEP round trip")
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        der = c.get(public).value
        pem = b"-----BEGIN RSA PUBLIC KEY-----\n" + base64.encodebytes(der) + b"-----END RSA PUBLIC KEY-----\n"
        rsa_key = serialization.load_pem_public_key(pem)
        theirs = rsa_key.encrypt(
            secret,
            padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA256(), label=None),
        )
        expect(c.decrypt(theirs, uid=private, cryptographic_parameters=oaep) == secret, "OAEP from cryptography")
    print("crypto ok")


def derive(args):
    import hashlib
    import hmac
    from kmip.pie import objects
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.kbkdf import CounterLocation, KBKDFHMAC, Mode

    M = enums.DerivationMethod
    A = enums.CryptographicAlgorithm
    derive_mask = [enums.CryptographicUsageMask.DERIVE_KEY]
    sha256 = {"hashing_algorithm": enums.HashingAlgorithm.SHA_256}
    with client(args, args.name) as c:
        def registered(obj):
            uid = c.register(obj)
            c.activate(uid)
            return uid

        def derived(base, method, params, bits, algorithm=A.AES, object_type=enums.ObjectType.SYMMETRIC_KEY):
            uid = c.derive_key(object_type, base, method, params,
                               cryptographic_length=bits, cryptographic_algorithm=algorithm)
            return uid, c.get(uid).value

        hmac_key = bytes(range(32))
        mac_base = registered(objects.SymmetricKey(A.HMAC_SHA256, 256, hmac_key, masks=derive_mask))
        data = b"strongroom derivation data"

        uid, value = derived([mac_base], M.HMAC, {"cryptographic_parameters": sha256, "derivation_data": data}, 128)
        expect(value == hmac.new(hmac_key, data, "sha256").digest()[:16], "HMAC derivation")
        expect(c.get_attributes(uid, ["Cryptographic Length"])[1][0].attribute_value.value == 128, "length")

        _, value = derived([mac_base], M.NIST800_108_C, {"cryptographic_parameters": sha256,
                                                         "derivation_data": b"label\x00context"}, 256)
        kbkdf = KBKDFHMAC(algorithm=hashes.SHA256(), mode=Mode.CounterMode, length=32, rlen=4, llen=4,
                          location=CounterLocation.BeforeFixed, label=b"label", context=b"context", fixed=None)
        expect(value == kbkdf.derive(hmac_key), "SP 800-108 counter mode equals cryptography's KBKDFHMAC")

        password = registered(objects.SecretData(b"correct horse battery staple",
                                                 enums.SecretDataType.PASSWORD, masks=derive_mask))
        _, value = derived([password], M.PBKDF2, {"cryptographic_parameters": sha256, "salt": b"NaCl",
                                                  "iteration_count": 4096}, 256)
        expect(value == hashlib.pbkdf2_hmac("sha256", b"correct horse battery staple", b"NaCl", 4096, 32), "PBKDF2")

        _, value = derived([mac_base], M.HASH, {"cryptographic_parameters": sha256, "derivation_data": data},
                           256, algorithm=None, object_type=enums.ObjectType.SECRET_DATA)
        expect(value == hashlib.sha256(data).digest(), "HASH derivation into Secret Data")

        aes_key = bytes(range(100, 132))
        aes_base = registered(objects.SymmetricKey(A.AES, 256, aes_key, masks=derive_mask))
        iv = bytes(range(16))
        block_data = bytes(range(200, 232))
        _, value = derived([aes_base], M.ENCRYPT, {
            "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.CBC,
                                         "padding_method": enums.PaddingMethod.NONE},
            "initialization_vector": iv, "derivation_data": block_data}, 256)
        enc = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
        expect(value == enc.update(block_data) + enc.finalize(), "ENCRYPT derivation (AES-CBC)")

        # SP 800-108 counter mode with an AES-CMAC PRF (NIST SP 800-108 §4.1).
        from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC
        _, value = derived([aes_base], M.NIST800_108_C, {
            "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.CMAC},
            "derivation_data": b"label\x00context"}, 256)
        kbkdf = KBKDFCMAC(algorithm=algorithms.AES, mode=Mode.CounterMode, length=32, rlen=4, llen=4,
                          location=CounterLocation.BeforeFixed, label=b"label", context=b"context", fixed=None)
        expect(value == kbkdf.derive(aes_key), "SP 800-108 with CMAC equals cryptography's KBKDFCMAC")

        no_derive = registered(objects.SymmetricKey(A.HMAC_SHA256, 256, hmac_key,
                                                    masks=[enums.CryptographicUsageMask.MAC_GENERATE]))
        refused(lambda: c.derive_key(enums.ObjectType.SYMMETRIC_KEY, [no_derive], M.HMAC,
                                     {"cryptographic_parameters": sha256, "derivation_data": data},
                                     cryptographic_length=128, cryptographic_algorithm=A.AES),
                enums.ResultReason.PERMISSION_DENIED)
        refused(lambda: c.derive_key(enums.ObjectType.SECRET_DATA, [mac_base], M.HMAC,
                                     {"cryptographic_parameters": sha256, "derivation_data": data},
                                     cryptographic_length=512),
                enums.ResultReason.INVALID_FIELD)

        # MAC with a server-generated HMAC key, checked against its material.
        mac_key = c.create(A.HMAC_SHA256, 256, cryptographic_usage_mask=[
            enums.CryptographicUsageMask.MAC_GENERATE, enums.CryptographicUsageMask.MAC_VERIFY])
        c.activate(mac_key)
        material = c.get(mac_key).value
        mac_uid, mac = c.mac(b"authenticated by the HSM", uid=mac_key, algorithm=A.HMAC_SHA256)
        expect(mac_uid == mac_key, "MAC names its key")
        expect(mac == hmac.new(material, b"authenticated by the HSM", "sha256").digest(), "MAC value")

        # AES-CMAC with a server-generated AES key, checked with cryptography's CMAC.
        from cryptography.hazmat.primitives.cmac import CMAC
        cmac_key = c.create(A.AES, 128, cryptographic_usage_mask=[
            enums.CryptographicUsageMask.MAC_GENERATE, enums.CryptographicUsageMask.MAC_VERIFY])
        c.activate(cmac_key)
        ours = CMAC(algorithms.AES(c.get(cmac_key).value))
        ours.update(b"authenticated by the HSM")
        _, mac = c.mac(b"authenticated by the HSM", uid=cmac_key, algorithm=A.AES)
        expect(mac == ours.finalize(), "AES-CMAC value")

        # Get wrapped: the AES key comes back under another with AES Key Wrap (RFC 3394).
        from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
        kek = c.create(A.AES, 256, cryptographic_usage_mask=[
            enums.CryptographicUsageMask.WRAP_KEY, enums.CryptographicUsageMask.UNWRAP_KEY])
        c.activate(kek)
        target = c.create(A.AES, 128)
        plain = c.get(target).value
        wrapped = c.get(target, key_wrapping_specification={
            "wrapping_method": enums.WrappingMethod.ENCRYPT,
            "encryption_key_information": {
                "unique_identifier": kek,
                "cryptographic_parameters": {"block_cipher_mode": enums.BlockCipherMode.NIST_KEY_WRAP},
            },
            "encoding_option": enums.EncodingOption.NO_ENCODING,
        })
        expect(wrapped.value != plain and len(wrapped.value) == len(plain) + 8, "wrapped key")
        expect(aes_key_unwrap(c.get(kek).value, wrapped.value) == plain, "unwraps to the key")
    print("derive ok")


def registered_objects(args):
    import ssl

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from kmip.pie import objects

    # NAME.crt holds the client certificate, then its issuing intermediate: take the first.
    with open(f"{args.certs}/{args.name}.crt") as f:
        end = "-----END CERTIFICATE-----"
        cert_der = ssl.PEM_cert_to_DER_cert(f.read().split(end)[0] + end + "\n")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    rsa_private = rsa.generate_private_key(65537, 2048)
    rsa_pkcs1 = rsa_private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    ec_private = ec.generate_private_key(ec.SECP384R1())
    ec_spki = ec_private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    message = b"signed outside, verified in the HSM"
    rsa_signature = rsa_private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    ec_signature = ec_private.sign(message, ec.ECDSA(hashes.SHA384()))
    with client(args, args.name) as c:
        cert_id = c.register(objects.X509Certificate(cert_der))
        got = c.get(cert_id)
        expect(got.value == cert_der, "certificate comes back byte for byte")
        expect(cert_id in c.locate(attributes=[attribute_factory.AttributeFactory().create_attribute(
            enums.AttributeType.OBJECT_TYPE, enums.ObjectType.CERTIFICATE)]), "Locate by type")
        a = attrs_by_name(c, cert_id, ["Certificate Type", "Certificate Length", "Cryptographic Algorithm"])
        expect(a["Certificate Type"].value == enums.CertificateType.X_509, f"type {a}")
        expect(a["Certificate Length"].value == len(cert_der), f"length {a}")

        verify = [enums.CryptographicUsageMask.VERIFY]
        rsa_id = c.register(objects.PublicKey(
            enums.CryptographicAlgorithm.RSA, 2048, rsa_pkcs1, enums.KeyFormatType.PKCS_1, masks=verify))
        got = c.get(rsa_id)
        expect(got.value == rsa_pkcs1 and got.key_format_type == enums.KeyFormatType.PKCS_1,
               "RSA public key comes back as PKCS#1")
        ec_id = c.register(objects.PublicKey(
            enums.CryptographicAlgorithm.EC, 384, ec_spki, enums.KeyFormatType.X_509, masks=verify))
        expect(c.get(ec_id).value == ec_spki, "EC public key comes back as SubjectPublicKeyInfo")
        a = attrs_by_name(c, ec_id, ["Cryptographic Length"])
        expect(a["Cryptographic Length"].value == 384, f"EC length {a}")

        # Registered public keys verify signatures made elsewhere (in the HSM, as session keys).
        for uid, signature, dsa in [
            (rsa_id, rsa_signature, enums.DigitalSignatureAlgorithm.SHA256_WITH_RSA_ENCRYPTION),
            (ec_id, ec_signature, enums.DigitalSignatureAlgorithm.ECDSA_WITH_SHA384),
        ]:
            c.activate(uid)
            params = {"digital_signature_algorithm": dsa}
            valid = c.signature_verify(message, signature, uid=uid, cryptographic_parameters=params)
            expect(valid == enums.ValidityIndicator.VALID, f"{dsa} verifies with the registered key")
            invalid = c.signature_verify(b"other", signature, uid=uid, cryptographic_parameters=params)
            expect(invalid == enums.ValidityIndicator.INVALID, f"{dsa} wrong message fails")
        expect(refused(lambda: c.register(objects.PublicKey(
            enums.CryptographicAlgorithm.RSA, 2048, b"not a key", enums.KeyFormatType.PKCS_1)),
            enums.ResultReason.INVALID_FIELD), "garbage public key refused")

        # Get wrapped by a registered RSA public key (RSA-OAEP, SHA-256, MGF1 with SHA-1 by
        # default): the private key held here unwraps it.
        wrap_id = c.register(objects.PublicKey(
            enums.CryptographicAlgorithm.RSA, 2048, rsa_pkcs1, enums.KeyFormatType.PKCS_1,
            masks=[enums.CryptographicUsageMask.WRAP_KEY]))
        c.activate(wrap_id)
        target = c.create(enums.CryptographicAlgorithm.AES, 256)
        plain = c.get(target).value
        wrapped = c.get(target, key_wrapping_specification={
            "wrapping_method": enums.WrappingMethod.ENCRYPT,
            "encryption_key_information": {
                "unique_identifier": wrap_id,
                "cryptographic_parameters": {
                    "padding_method": enums.PaddingMethod.OAEP,
                    "hashing_algorithm": enums.HashingAlgorithm.SHA_256,
                },
            },
            "encoding_option": enums.EncodingOption.NO_ENCODING,
        })
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA256(), label=None)
        expect(rsa_private.decrypt(wrapped.value, oaep) == plain, "RSA-OAEP wrapped key unwraps")

        c.destroy(cert_id)
        # Object Destroyed in KMIP 1.4 and later, Illegal Operation before.
        gone = [enums.ResultReason.ILLEGAL_OPERATION]
        if hasattr(enums.ResultReason, "OBJECT_DESTROYED"):
            gone.append(enums.ResultReason.OBJECT_DESTROYED)
        expect(any(refused(lambda: c.get(cert_id), r) for r in gone), "destroyed certificate is gone")
    print("objects ok")


if __name__ == "__main__":
    main()
