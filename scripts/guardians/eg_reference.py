#!/usr/bin/env python3
"""Checks Vottery's guardian numbers with the ElectionGuard 1.4.0 reference package.

Runs on Python 3.10 with `electionguard==1.4.0` installed (scripts/lib/provision.sh
`ensure_electionguard` makes such a venv and exports ELECTIONGUARD_PYTHON).

Every JSON value uses the reference's own serialized shapes (electionguard.serialize.to_raw):
elements mod p and q are upper-case hex strings; ElectionPublicKey, SchnorrProof,
ChaumPedersenProof, ElGamalCiphertext and ElectionJointKey have the reference's field names.

Subcommands
-----------
vectors
    Prints deterministic known-answer vectors (JSON) for the Rust crate's tests:
    hash_elems, g^e, pow, ElGamal and hashed ElGamal with fixed nonces, Schnorr and
    Chaum-Pedersen proofs with fixed nonces, a polynomial from a fixed nonce with coordinates,
    Lagrange coefficients, a padded partial key backup, the joint key and commitment hash,
    a recovery public key and discrete logs.

verify FILE
    Checks every proof in FILE (JSON object; every member optional):
      "quorum": int                                  number of coefficients each record must have
      "public_records": [ElectionPublicKey]          each coefficient's Schnorr proof is checked
      "joint_key": ElectionJointKey                  compared with the one recomputed from the records
      "extended_base_hash": hex                      Q' for the partial decryptions
      "ciphertexts": [ElGamalCiphertext]
      "decryptions": [{"guardian_id": str, "public_key": hex (optional: else the record's key),
                       "shares": [{"partial_decryption": hex, "proof": ChaumPedersenProof}]}]
          one share per ciphertext, in order; each proof is checked against the guardian's key
      "compensated": [{"guardian_id": str, "missing_guardian_id": str,
                       "recovery_public_key": hex (optional: compared with the recomputed one),
                       "shares": [...]}]
          shares made for a missing guardian; proofs are checked against the recovery key
          recomputed from both public records
      "expected_plaintexts": [int]                   with "decryptions" (and "compensated" for
          every missing guardian): the reference combines the shares (Lagrange coefficients over
          the guardians present) and must find these plaintexts
    Prints one line per item ("ok ..." or "FAIL ..."), then a summary; exits 1 on any failure,
    2 on unreadable input.

encrypt --joint-key HEX [--nonce-seed HEX] VALUE...
    Encrypts each integer VALUE to the joint key with the reference (a fresh random nonce each,
    or nonces derived from --nonce-seed) and prints a JSON list of ElGamalCiphertext.

joint-key FILE
    FILE holds a JSON list of ElectionPublicKey (or an object with "public_records"); prints
    the reference's ElectionJointKey (joint_public_key, commitment_hash) as JSON.

bench [--count N]
    Times the reference doing one guardian's work: N partial decryptions with Chaum-Pedersen
    proofs, and N proof verifications. Prints JSON with per-second rates.
"""

import argparse
import json
import logging
import sys
import time

from electionguard.chaum_pedersen import ChaumPedersenProof, make_chaum_pedersen
from electionguard.decryption import (
    compute_lagrange_coefficients_for_guardians,
    compute_recovery_public_key,
    partially_decrypt,
)
from electionguard.discrete_log import DiscreteLog
from electionguard.election_polynomial import (
    compute_lagrange_coefficient,
    compute_polynomial_coordinate,
    generate_polynomial,
)
from electionguard.elgamal import (
    ElGamalCiphertext,
    ElGamalKeyPair,
    elgamal_encrypt,
    hashed_elgamal_encrypt,
)
from electionguard.group import (
    ElementModP,
    ElementModQ,
    div_p,
    g_pow_p,
    mult_p,
    pow_p,
    rand_range_q,
)
from electionguard.hash import hash_elems
from electionguard.key_ceremony import (
    CoordinateData,
    ElectionJointKey,
    ElectionKeyPair,
    ElectionPublicKey,
    combine_election_public_keys,
    get_backup_seed,
)
from electionguard.nonces import Nonces
from electionguard.schnorr import make_schnorr_proof
from electionguard.serialize import from_raw, to_raw

logging.getLogger("electionguard").setLevel(logging.CRITICAL)
for _handler in logging.getLogger("electionguard").handlers:
    _handler.setLevel(logging.CRITICAL)


def raw(value):
    """The reference's JSON form of a value, as plain JSON data."""
    return json.loads(to_raw(value))


def load(type_, data):
    """A reference object from plain JSON data, through the reference's own deserializer."""
    return from_raw(type_, json.dumps(data))


# --- vectors ---------------------------------------------------------------------------


def typed_to_python(item):
    """A vector's typed hash input as the Python value hash_elems takes."""
    if "p" in item:
        return ElementModP(item["p"])
    if "q" in item:
        return ElementModQ(item["q"])
    if "str" in item:
        return item["str"]
    if "int" in item:
        return item["int"]
    if "seq" in item:
        return [typed_to_python(x) for x in item["seq"]]
    return None


def vectors():
    g = g_pow_p(1)
    q5 = ElementModQ(5)
    hash_cases = [
        [],
        [{"int": 0}],
        [{"str": ""}],
        [{"str": "guardian-1"}, {"int": 3}],
        [{"q": "00"}, {"q": "0123"}, {"p": g.to_hex()}],
        [{"null": True}],
        [{"seq": []}],
        [{"seq": [{"int": 1}, {"int": 2}]}, {"null": True}, {"int": 18446744073709551615}],
        [{"seq": [{"seq": [{"str": "a"}]}, {"q": q5.to_hex()}]}],
    ]
    hashes = [
        {"inputs": case, "hash": hash_elems(*[typed_to_python(x) for x in case]).to_hex()}
        for case in hash_cases
    ]

    exponents = [0, 1, 189, 2**255 + 12345, (2**256 - 189) - 1]
    g_pow = [{"e": ElementModQ(e).to_hex(), "result": g_pow_p(e).to_hex()} for e in exponents]
    base = g_pow_p(987654321)
    pows = [
        {"base": base.to_hex(), "e": ElementModQ(e).to_hex(), "result": pow_p(base, e).to_hex()}
        for e in exponents
    ]

    secret = ElementModQ(0x1234567890ABCDEF)
    public_key = g_pow_p(secret)
    encrypt = []
    for message, nonce in [(0, 7), (42, 2**200 + 3)]:
        ct = elgamal_encrypt(message, ElementModQ(nonce), public_key)
        encrypt.append(
            {
                "message": message,
                "nonce": ElementModQ(nonce).to_hex(),
                "public_key": public_key.to_hex(),
                "ciphertext": raw(ct),
            }
        )

    schnorr_nonce = ElementModQ(0xABCDEF)
    schnorr = make_schnorr_proof(ElGamalKeyPair(secret, public_key), schnorr_nonce)

    ct = elgamal_encrypt(3, ElementModQ(11), public_key)
    m = pow_p(ct.pad, secret)
    seed = ElementModQ(0xC0FFEE)
    header = ElementModQ(0xBA5E)
    chaum_pedersen = make_chaum_pedersen(ct, secret, m, seed, header)
    assert chaum_pedersen.is_valid(ct, public_key, m, header)

    poly_nonce = ElementModQ(2**250 + 77)
    polynomial = generate_polynomial(3, poly_nonce)
    coordinates = {
        str(order): compute_polynomial_coordinate(order, polynomial).to_hex()
        for order in [1, 2, 3, 5, 32]
    }

    lagrange = []
    for coordinate, degrees in [(1, [2, 3]), (2, [1, 3]), (3, [1, 2]), (1, [2, 3, 4, 5]), (5, [1, 7])]:
        lagrange.append(
            {
                "coordinate": coordinate,
                "degrees": degrees,
                "result": compute_lagrange_coefficient(coordinate, *degrees).to_hex(),
            }
        )

    hashed = []
    hashed_seed = ElementModQ(0x5EED)
    for message in [b"abc", bytes(range(40))]:
        he = hashed_elgamal_encrypt(message, ElementModQ(31337), public_key, hashed_seed)
        hashed.append(
            {
                "message": message.hex().upper(),
                "nonce": ElementModQ(31337).to_hex(),
                "public_key": public_key.to_hex(),
                "seed": hashed_seed.to_hex(),
                "ciphertext": raw(he),
            }
        )

    # Three guardians from fixed nonces (their Schnorr proofs use random nonces, as the
    # reference's generate_polynomial does).
    records = []
    polynomials = []
    for order in (1, 2, 3):
        poly = generate_polynomial(2, ElementModQ(1000 * order))
        polynomials.append(poly)
        records.append(
            ElectionPublicKey(
                f"guardian-{order}",
                order,
                poly.coefficients[0].commitment,
                poly.get_commitments(),
                poly.get_proofs(),
            )
        )
    joint = combine_election_public_keys(records)

    backup_nonce = ElementModQ(4242)
    receiver = records[1]
    coordinate = compute_polynomial_coordinate(receiver.sequence_order, polynomials[0])
    backup_ct = hashed_elgamal_encrypt(
        CoordinateData(coordinate).to_bytes(),
        backup_nonce,
        receiver.key,
        get_backup_seed(receiver.owner_id, receiver.sequence_order),
    )
    backup = {
        "owner_nonce": ElementModQ(1000).to_hex(),
        "owner_quorum": 2,
        "owner_id": records[0].owner_id,
        "receiver": raw(receiver),
        "receiver_secret": polynomials[1].coefficients[0].value.to_hex(),
        "nonce": backup_nonce.to_hex(),
        "coordinate": coordinate.to_hex(),
        "encrypted_coordinate": raw(backup_ct),
    }

    recovery = {
        "sequence_order": 1,
        "missing": raw(records[2]),
        "result": compute_recovery_public_key(records[0], records[2]).to_hex(),
    }

    discrete_log = [{"g_m": g_pow_p(m_).to_hex(), "m": m_} for m_ in [0, 1, 5, 1000]]

    return {
        "hash_elems": hashes,
        "g_pow_p": g_pow,
        "pow_p": pows,
        "elgamal_encrypt": encrypt,
        "schnorr": {
            "secret": secret.to_hex(),
            "nonce": schnorr_nonce.to_hex(),
            "proof": raw(schnorr),
        },
        "chaum_pedersen": {
            "ciphertext": raw(ct),
            "secret": secret.to_hex(),
            "public_key": public_key.to_hex(),
            "m": m.to_hex(),
            "seed": seed.to_hex(),
            "hash_header": header.to_hex(),
            "proof": raw(chaum_pedersen),
        },
        "polynomial": {
            "quorum": 3,
            "nonce": poly_nonce.to_hex(),
            "coefficients": [c.value.to_hex() for c in polynomial.coefficients],
            "commitments": [c.to_hex() for c in polynomial.get_commitments()],
            "coordinates": coordinates,
        },
        "lagrange": lagrange,
        "hashed_elgamal": hashed,
        "backup": backup,
        "joint_key": {"public_records": [raw(r) for r in records], "joint_key": raw(joint)},
        "recovery": recovery,
        "discrete_log": discrete_log,
    }


# --- verify ----------------------------------------------------------------------------


class Report:
    """One line per checked item; remembers whether anything failed."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok


def check_shares(report, label, shares, ciphertexts, key, ebh):
    """Checks one guardian's shares against the ciphertexts; returns the shares' M values."""
    values = []
    if len(shares) != len(ciphertexts):
        report.check(False, f"{label}: {len(shares)} shares for {len(ciphertexts)} ciphertexts")
    for i, (share, ct) in enumerate(zip(shares, ciphertexts)):
        m = ElementModP(share["partial_decryption"])
        proof = load(ChaumPedersenProof, share["proof"])
        report.check(proof.is_valid(ct, key, m, ebh), f"{label} share {i}")
        values.append(m)
    return values


def verify(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    report = Report()
    records = [load(ElectionPublicKey, r) for r in data.get("public_records", [])]
    by_id = {r.owner_id: r for r in records}
    quorum = data.get("quorum")

    for record in records:
        if quorum is not None:
            report.check(
                len(record.coefficient_commitments) == quorum
                and len(record.coefficient_proofs) == quorum,
                f"record {record.owner_id}: {quorum} commitments and proofs",
            )
        report.check(
            bool(record.coefficient_commitments) and record.key == record.coefficient_commitments[0],
            f"record {record.owner_id}: key is the first commitment",
        )
        for j, (commitment, proof) in enumerate(
            zip(record.coefficient_commitments, record.coefficient_proofs)
        ):
            report.check(
                proof.public_key == commitment and proof.is_valid(),
                f"record {record.owner_id}: schnorr proof {j}",
            )

    if "joint_key" in data:
        expected = combine_election_public_keys(records)
        given = load(ElectionJointKey, data["joint_key"])
        report.check(given.joint_public_key == expected.joint_public_key, "joint key")
        report.check(given.commitment_hash == expected.commitment_hash, "commitment hash")

    ciphertexts = [load(ElGamalCiphertext, c) for c in data.get("ciphertexts", [])]
    ebh = ElementModQ(data["extended_base_hash"]) if "extended_base_hash" in data else None
    present = {}
    for entry in data.get("decryptions", []):
        guardian = entry["guardian_id"]
        if "public_key" in entry:
            key = ElementModP(entry["public_key"])
            if guardian in by_id:
                report.check(key == by_id[guardian].key, f"guardian {guardian}: public key matches its record")
        else:
            key = by_id[guardian].key
        present[guardian] = check_shares(report, f"guardian {guardian}", entry["shares"], ciphertexts, key, ebh)

    compensated = {}
    for entry in data.get("compensated", []):
        guardian = entry["guardian_id"]
        missing = entry["missing_guardian_id"]
        recovery = compute_recovery_public_key(by_id[guardian], by_id[missing])
        if "recovery_public_key" in entry:
            report.check(
                ElementModP(entry["recovery_public_key"]) == recovery,
                f"guardian {guardian} for {missing}: recovery public key",
            )
        compensated.setdefault(missing, {})[guardian] = check_shares(
            report, f"guardian {guardian} for {missing}", entry["shares"], ciphertexts, recovery, ebh
        )

    if "expected_plaintexts" in data:
        expected = data["expected_plaintexts"]
        available = [by_id[g] for g in present]
        weights = compute_lagrange_coefficients_for_guardians(available) if compensated else {}
        for i, ct in enumerate(ciphertexts):
            shares = [values[i] for values in present.values()]
            for missing, parts in compensated.items():
                shares.append(mult_p(*[pow_p(values[i], weights[g]) for g, values in parts.items()]))
            g_m = div_p(ct.data, mult_p(*shares))
            try:
                plaintext = DiscreteLog().discrete_log(g_m)
            except ValueError:
                plaintext = None
            report.check(
                i < len(expected) and plaintext == expected[i],
                f"plaintext {i}: {plaintext} (expected {expected[i] if i < len(expected) else '?'})",
            )

    print(f"{report.passed} ok, {report.failed} failed", flush=True)
    return 1 if report.failed else 0


# --- encrypt, joint-key, bench ---------------------------------------------------------


def encrypt(joint_key, values, nonce_seed):
    key = ElementModP(joint_key)
    nonces = Nonces(ElementModQ(nonce_seed), "vottery-encrypt") if nonce_seed else None
    out = []
    for i, value in enumerate(values):
        nonce = nonces[i] if nonces else rand_range_q(1)
        out.append(raw(elgamal_encrypt(value, nonce, key)))
    print(json.dumps(out))
    return 0


def joint_key(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, dict):
        data = data["public_records"]
    records = [load(ElectionPublicKey, r) for r in data]
    print(to_raw(combine_election_public_keys(records)))
    return 0


def bench(count):
    polynomial = generate_polynomial(3)
    secret = polynomial.coefficients[0].value
    key = polynomial.coefficients[0].commitment
    key_pair = ElectionKeyPair("bench", 1, ElGamalKeyPair(secret, key), polynomial)
    ebh = ElementModQ(0xE8)
    ciphertexts = [elgamal_encrypt(i % 2, rand_range_q(1), key) for i in range(count)]

    start = time.perf_counter()
    shares = [partially_decrypt(key_pair, ct, ebh) for ct in ciphertexts]
    decrypt_seconds = time.perf_counter() - start

    start = time.perf_counter()
    valid = all(proof.is_valid(ct, key, m, ebh) for ct, (m, proof) in zip(ciphertexts, shares))
    verify_seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "count": count,
                "all_valid": valid,
                "partial_decrypt_per_s": round(count / decrypt_seconds, 1),
                "verify_per_s": round(count / verify_seconds, 1),
            }
        )
    )
    return 0 if valid else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("vectors")
    p_verify = sub.add_parser("verify")
    p_verify.add_argument("file")
    p_encrypt = sub.add_parser("encrypt")
    p_encrypt.add_argument("--joint-key", required=True)
    p_encrypt.add_argument("--nonce-seed")
    p_encrypt.add_argument("values", nargs="+", type=int)
    p_joint = sub.add_parser("joint-key")
    p_joint.add_argument("file")
    p_bench = sub.add_parser("bench")
    p_bench.add_argument("--count", type=int, default=50)
    args = parser.parse_args()

    if args.command == "vectors":
        print(json.dumps(vectors(), indent=1, sort_keys=True))
        return 0
    if args.command == "verify":
        try:
            return verify(args.file)
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"FAIL unreadable input: {error!r}", flush=True)
            return 2
    if args.command == "encrypt":
        return encrypt(args.joint_key, args.values, args.nonce_seed)
    if args.command == "joint-key":
        return joint_key(args.file)
    return bench(args.count)


if __name__ == "__main__":
    sys.exit(main())
