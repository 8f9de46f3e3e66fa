//! What a request must be before a guardian acts on it: names, ceremony parameters, public
//! records and ciphertexts, each refused with the field named. Pure checks; no storage.

use std::collections::HashSet;

use vottery_common::guardians::{CreateGuardian, MAX_CIPHERTEXTS, MAX_GUARDIANS};
use vottery_common::problem::FieldError;
use vottery_election::{ElGamalCiphertext, ElectionPublicKey, ElementModP, all_members};

use super::error::GuardianError;
use crate::keys::is_valid_key_name;

/// A guardian's name: the `{guardian}` path segment, spelled like a transit key name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianName(String);

impl GuardianName {
    pub fn parse(text: &str) -> Result<Self, GuardianError> {
        if is_valid_key_name(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(GuardianError::invalid(
                "guardian",
                "must be 1 to 128 letters, digits, '_', '-' or '.', starting and ending with a letter, digit or '_'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GuardianName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a ceremony id is usable: 1 to 128 of `A-Z a-z 0-9 _ . : -`.
fn is_valid_ceremony_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.:-".contains(&byte))
}

/// Checks a create request: n in 1..=32, quorum in 1..=n, sequence order in 1..=n.
pub fn check_create(request: &CreateGuardian) -> Result<(), GuardianError> {
    let mut errors = Vec::new();
    if !is_valid_ceremony_id(&request.ceremony_id) {
        errors.push(FieldError::new(
            "ceremony_id",
            "must be 1 to 128 letters, digits, '_', '.', ':' or '-'",
        ));
    }
    let n = request.number_of_guardians;
    if !(1..=MAX_GUARDIANS).contains(&n) {
        errors.push(FieldError::new(
            "number_of_guardians",
            format!("must be 1 to {MAX_GUARDIANS}"),
        ));
    }
    let bound = n.clamp(1, MAX_GUARDIANS);
    if !(1..=bound).contains(&request.quorum) {
        errors.push(FieldError::new(
            "quorum",
            format!("must be 1 to number_of_guardians ({n})"),
        ));
    }
    if !(1..=bound).contains(&request.sequence_order) {
        errors.push(FieldError::new(
            "sequence_order",
            format!("must be 1 to number_of_guardians ({n})"),
        ));
    }
    GuardianError::unless_refused(errors)
}

/// The shape of the public records a guardian is given: exactly n, one per sequence order
/// 1..=n, distinct valid names, this guardian's own record exactly as it made it, k
/// commitments and proofs each. The proofs are checked apart ([`super::backups`]).
pub fn check_public_records(
    records: &[ElectionPublicKey],
    n: u32,
    quorum: u32,
    own: &ElectionPublicKey,
) -> Result<(), GuardianError> {
    if records.len() != n as usize {
        return Err(GuardianError::invalid(
            "public_records",
            format!(
                "expected the {n} guardians' public records, got {}",
                records.len()
            ),
        ));
    }
    let mut errors = Vec::new();
    let mut names = HashSet::new();
    let mut orders = HashSet::new();
    for (index, record) in records.iter().enumerate() {
        let field = |name: &str| format!("public_records[{index}].{name}");
        if !is_valid_key_name(&record.owner_id) {
            errors.push(FieldError::new(
                field("owner_id"),
                "not a valid guardian name",
            ));
        } else if !names.insert(record.owner_id.as_str()) {
            errors.push(FieldError::new(
                field("owner_id"),
                format!("guardian {} appears twice", record.owner_id),
            ));
        }
        if !(1..=n).contains(&record.sequence_order) {
            errors.push(FieldError::new(
                field("sequence_order"),
                format!("must be 1 to {n}"),
            ));
        } else if !orders.insert(record.sequence_order) {
            errors.push(FieldError::new(
                field("sequence_order"),
                format!("sequence order {} appears twice", record.sequence_order),
            ));
        }
        let expected = quorum as usize;
        if record.coefficient_commitments.len() != expected {
            errors.push(FieldError::new(
                field("coefficient_commitments"),
                format!("must hold {expected} commitments (the quorum)"),
            ));
        }
        if record.coefficient_proofs.len() != expected {
            errors.push(FieldError::new(
                field("coefficient_proofs"),
                format!("must hold {expected} proofs (the quorum)"),
            ));
        }
        if record.owner_id == own.owner_id && record != own {
            errors.push(FieldError::new(
                format!("public_records[{index}]"),
                format!("differs from guardian {}'s own public record", own.owner_id),
            ));
        }
        if record.owner_id != own.owner_id && record.sequence_order == own.sequence_order {
            errors.push(FieldError::new(
                field("sequence_order"),
                format!(
                    "sequence order {} is guardian {}'s",
                    own.sequence_order, own.owner_id
                ),
            ));
        }
    }
    if !names.contains(own.owner_id.as_str()) && errors.is_empty() {
        errors.push(FieldError::new(
            "public_records",
            format!("guardian {}'s own public record is missing", own.owner_id),
        ));
    }
    GuardianError::unless_refused(errors)
}

/// Public records in sequence order: the order every instance combines and signs them in.
pub fn in_sequence_order(mut records: Vec<ElectionPublicKey>) -> Vec<ElectionPublicKey> {
    records.sort_by_key(|record| record.sequence_order);
    records
}

/// The count of a decrypt or compensate batch: 1 to 1,000.
pub fn check_batch_size(ciphertexts: &[ElGamalCiphertext]) -> Result<(), GuardianError> {
    if ciphertexts.is_empty() || ciphertexts.len() > MAX_CIPHERTEXTS {
        return Err(GuardianError::invalid(
            "ciphertexts",
            format!(
                "must hold 1 to {MAX_CIPHERTEXTS} ciphertexts, got {}",
                ciphertexts.len()
            ),
        ));
    }
    Ok(())
}

/// Most bad elements named in one answer.
const MAX_NAMED: usize = 20;

/// Which half of a ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Pad,
    Data,
}

/// The indices of the ciphertexts whose `part` is not in the order-q subgroup mod p, checked on
/// every core (each check is an exponentiation by q).
fn non_members(ciphertexts: &[ElGamalCiphertext], part: Part) -> Vec<usize> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8);
    let chunk = ciphertexts.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = ciphertexts
            .chunks(chunk)
            .enumerate()
            .map(|(number, slice)| {
                scope.spawn(move || {
                    slice
                        .iter()
                        .enumerate()
                        .filter(|(_, ciphertext)| {
                            let element = match part {
                                Part::Pad => &ciphertext.pad,
                                Part::Data => &ciphertext.data,
                            };
                            !element.is_valid_residue()
                        })
                        .map(|(offset, _)| number * chunk + offset)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let len = ciphertexts.len();
        workers
            .into_iter()
            .enumerate()
            .flat_map(|(number, worker)| {
                // A worker that panicked proves nothing: its whole chunk is refused.
                worker
                    .join()
                    .unwrap_or_else(|_| (number * chunk..((number + 1) * chunk).min(len)).collect())
            })
            .collect()
    })
}

/// The refusal naming every element outside the group (`ciphertexts[3].pad`), pads and data.
fn refusal(ciphertexts: &[ElGamalCiphertext], bad_data: Vec<usize>) -> GuardianError {
    let mut bad: Vec<(usize, &str)> = non_members(ciphertexts, Part::Pad)
        .into_iter()
        .map(|index| (index, "pad"))
        .chain(bad_data.into_iter().map(|index| (index, "data")))
        .collect();
    bad.sort();
    bad.truncate(MAX_NAMED);
    GuardianError::invalid_fields(
        bad.into_iter()
            .map(|(index, part)| {
                FieldError::new(
                    format!("ciphertexts[{index}].{part}"),
                    "is not a member of the group (not in the order-q subgroup mod p)",
                )
            })
            .collect(),
    )
}

/// Refuses ciphertexts whose data is not in the group, naming every bad pad and data. The data
/// are checked together ([`all_members`]), one by one only to name the bad ones; the pads of
/// valid-looking batches are checked by the partial decryption itself, which raises only group
/// members to the secret; when it refuses one, [`pads_refused`] names them all.
/// CPU-bound: run it off the async runtime.
pub fn check_data(ciphertexts: &[ElGamalCiphertext]) -> Result<(), GuardianError> {
    let data: Vec<&ElementModP> = ciphertexts.iter().map(|ct| &ct.data).collect();
    if all_members(&data) {
        return Ok(());
    }
    let bad_data = non_members(ciphertexts, Part::Data);
    if bad_data.is_empty() {
        Ok(())
    } else {
        Err(refusal(ciphertexts, bad_data))
    }
}

/// The refusal for a batch whose partial decryption found the pad at `first` outside the group.
pub fn pads_refused(ciphertexts: &[ElGamalCiphertext], first: usize) -> GuardianError {
    match refusal(ciphertexts, Vec::new()) {
        GuardianError::Invalid { errors, .. } if errors.is_empty() => GuardianError::invalid(
            format!("ciphertexts[{first}].pad"),
            "is not a member of the group (not in the order-q subgroup mod p)",
        ),
        refused => refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(sequence_order: u32, n: u32, quorum: u32) -> CreateGuardian {
        CreateGuardian {
            ceremony_id: "election-2027".into(),
            sequence_order,
            number_of_guardians: n,
            quorum,
        }
    }

    fn fields(error: GuardianError) -> Vec<String> {
        match error {
            GuardianError::Invalid { errors, .. } => {
                errors.into_iter().map(|error| error.field).collect()
            }
            other => panic!("not a 400: {other}"),
        }
    }

    #[test]
    fn ceremony_parameters_are_bounded_by_n() {
        assert!(check_create(&create(1, 3, 2)).is_ok());
        assert!(check_create(&create(32, 32, 32)).is_ok());
        assert_eq!(
            fields(check_create(&create(1, 3, 4)).unwrap_err()),
            ["quorum"]
        );
        assert_eq!(
            fields(check_create(&create(4, 3, 2)).unwrap_err()),
            ["sequence_order"]
        );
        assert_eq!(
            fields(check_create(&create(0, 3, 0)).unwrap_err()),
            ["quorum", "sequence_order"]
        );
        assert_eq!(
            fields(check_create(&create(1, 33, 2)).unwrap_err()),
            ["number_of_guardians"]
        );
        let mut bad_id = create(1, 3, 2);
        bad_id.ceremony_id = "a/b".into();
        assert_eq!(fields(check_create(&bad_id).unwrap_err()), ["ceremony_id"]);
    }

    #[test]
    fn guardian_names_are_spelled_like_key_names() {
        assert!(GuardianName::parse("guardian-1").is_ok());
        assert!(GuardianName::parse("a/b").is_err());
        assert!(GuardianName::parse("").is_err());
    }
}
