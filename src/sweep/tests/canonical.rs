use super::parse;
use crate::sweep::canonical_json;

#[test]
fn spellings_of_the_same_sweep_hash_the_same() {
    let terse = parse(
        r#"{"name": " exponent ", "base": {"epochs": 30, "schedule": {"kind": "inverse_power", "lr": 0.1}},
            "grid": {"schedule.power": [0.25, 0.5]}, "repeats": 3,
            "early_stopping": {"kind": "asha", "metric": "test_acc", "grace_period": 2}}"#,
    );
    let explicit = parse(
        r#"{"lockstep": true, "seeds": [0, 1, 2], "grid": {"schedule.power": [0.25, 0.5]},
            "base": {"schedule": {"lr": 0.1, "kind": "inverse_power"}, "epochs": 30},
            "early_stopping": {"max_t": 30, "reduction_factor": 3, "mode": "max", "grace_period": 2,
                               "metric": "test_acc", "kind": "asha"},
            "name": "exponent"}"#,
    );
    assert_eq!(canonical_json(&terse), canonical_json(&explicit));
}

#[test]
fn what_changes_the_sweep_changes_the_canonical_form() {
    let one = r#"{"base": {"epochs": 3, "schedule": {"kind": "constant", "lr": 0.1}},
                  "grid": {"schedule.lr": [0.1, 0.2], "batch_size": [64, 128]}}"#;
    let reordered_grid = r#"{"base": {"epochs": 3, "schedule": {"kind": "constant", "lr": 0.1}},
                  "grid": {"batch_size": [64, 128], "schedule.lr": [0.1, 0.2]}}"#;
    let other_seeds = r#"{"base": {"epochs": 3, "schedule": {"kind": "constant", "lr": 0.1}},
                  "grid": {"schedule.lr": [0.1, 0.2], "batch_size": [64, 128]}, "seeds": [0, 1]}"#;
    let unlocked = r#"{"base": {"epochs": 3, "schedule": {"kind": "constant", "lr": 0.1}},
                  "grid": {"schedule.lr": [0.1, 0.2], "batch_size": [64, 128]}, "lockstep": false}"#;
    let forms: Vec<String> = [one, reordered_grid, other_seeds, unlocked]
        .iter()
        .map(|json| canonical_json(&parse(json)))
        .collect();
    for i in 0..forms.len() {
        for j in 0..i {
            assert_ne!(forms[i], forms[j], "requests {i} and {j}");
        }
    }
}

#[test]
fn the_canonical_form_is_a_request_and_its_own_canonical_form() {
    let request = parse(
        r#"{"base": {"epochs": 12, "schedule": {"kind": "constant", "lr": 0.1}},
            "grid": {"schedule.lr": [0.3, 0.1], "epochs": [4, 8]},
            "variants": [{"name": "long", "epochs": 20}],
            "early_stopping": {"kind": "asha", "metric": "test_loss", "grace_period": 1}}"#,
    );
    let canonical = canonical_json(&request);
    let again = parse(&canonical);
    assert_eq!(canonical_json(&again), canonical);
    let value: serde_json::Value = serde_json::from_str(&canonical).unwrap();
    // max_t is the longest config: the grid's 8 or the variant's 20, not the base's 12 alone.
    assert_eq!(value["early_stopping"]["max_t"], 20);
    assert_eq!(value["early_stopping"]["mode"], "min");
    assert_eq!(value["seeds"], serde_json::json!([0, 1, 2]));
    assert!(
        canonical.contains(r#""grid":{"schedule.lr":[0.3,0.1],"epochs":[4,8]}"#),
        "{canonical}"
    );
}
