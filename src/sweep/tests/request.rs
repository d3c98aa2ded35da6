use super::parse;
use crate::sweep::{
    EarlyStopping, Metric, Mode, SweepRequest, DEFAULT_N_STARTUP, DEFAULT_WARMUP_EPOCHS,
};

const BASE: &str = r#""base": {"epochs": 5, "schedule": {"kind": "constant", "lr": 0.1}}"#;

fn try_parse(json: &str) -> Result<SweepRequest, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn grid_keeps_the_order_the_client_wrote() {
    let request = parse(&format!(
        r#"{{{BASE}, "grid": {{"schedule.lr": [0.1], "epochs": [3], "batch_size": [64]}}}}"#
    ));
    let paths: Vec<&str> = request.grid.iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["schedule.lr", "epochs", "batch_size"]);
    let back = serde_json::to_string(&request.grid).unwrap();
    assert_eq!(
        back,
        r#"{"schedule.lr":[0.1],"epochs":[3],"batch_size":[64]}"#
    );
}

#[test]
fn a_grid_path_given_twice_is_rejected() {
    let err = try_parse(&format!(
        r#"{{{BASE}, "grid": {{"epochs": [3], "epochs": [4]}}}}"#
    ))
    .unwrap_err();
    assert!(err.to_string().contains("`epochs` is given twice"), "{err}");
}

#[test]
fn unknown_fields_are_rejected_by_name_also_inside_early_stopping() {
    let err = try_parse(&format!(r#"{{{BASE}, "sedes": [1]}}"#)).unwrap_err();
    assert!(err.to_string().contains("unknown field `sedes`"), "{err}");
    let err = try_parse(&format!(
        r#"{{{BASE}, "early_stopping": {{"kind": "asha", "metric": "test_acc", "grace_period": 1, "eta": 2}}}}"#
    ))
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `eta`"), "{err}");
    let err = try_parse(&format!(
        r#"{{{BASE}, "early_stopping": {{"kind": "hyperband", "metric": "test_acc"}}}}"#
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown variant `hyperband`"),
        "{err}"
    );
    let err = try_parse(&format!(
        r#"{{{BASE}, "early_stopping": {{"kind": "median", "metric": "accuracy"}}}}"#
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown variant `accuracy`"),
        "{err}"
    );
}

#[test]
fn early_stopping_defaults_are_filled() {
    let request = parse(&format!(
        r#"{{{BASE}, "early_stopping": {{"kind": "asha", "metric": "test_loss", "grace_period": 1}}}}"#
    ));
    let Some(EarlyStopping::Asha(spec)) = &request.early_stopping else {
        panic!("asha expected");
    };
    assert_eq!(spec.reduction_factor, 3);
    assert_eq!(spec.max_t, None);
    assert_eq!(request.metric(), (Metric::TestLoss, Mode::Min));

    let request = parse(&format!(
        r#"{{{BASE}, "early_stopping": {{"kind": "median", "metric": "train_acc"}}}}"#
    ));
    let Some(EarlyStopping::Median(spec)) = &request.early_stopping else {
        panic!("median expected");
    };
    assert_eq!(spec.n_startup, DEFAULT_N_STARTUP);
    assert_eq!(spec.warmup_epochs, DEFAULT_WARMUP_EPOCHS);
    assert_eq!(request.metric(), (Metric::TrainAcc, Mode::Max));
}

#[test]
fn without_early_stopping_the_sweep_ranks_by_test_accuracy() {
    let request = parse(&format!("{{{BASE}}}"));
    assert_eq!(request.metric(), (Metric::TestAcc, Mode::Max));
    assert!(request.lockstep, "lockstep is the default");
}

#[test]
fn seeds_default_to_three_and_repeats_count_from_zero() {
    assert_eq!(
        parse(&format!("{{{BASE}}}")).resolved_seeds().unwrap(),
        [0, 1, 2]
    );
    let request = parse(&format!(r#"{{{BASE}, "repeats": 4}}"#));
    assert_eq!(request.resolved_seeds().unwrap(), [0, 1, 2, 3]);
    let request = parse(&format!(r#"{{{BASE}, "seeds": [7, 42]}}"#));
    assert_eq!(request.resolved_seeds().unwrap(), [7, 42]);
}

#[test]
fn seeds_and_repeats_together_duplicates_and_empty_lists_are_errors() {
    let both = parse(&format!(r#"{{{BASE}, "seeds": [1], "repeats": 2}}"#));
    let err = both.resolved_seeds().unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("conflicting_fields", "repeats")
    );

    let dup = parse(&format!(r#"{{{BASE}, "seeds": [4, 5, 4]}}"#));
    let err = dup.resolved_seeds().unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.path.as_str()),
        ("duplicate_value", "seeds[2]")
    );
    assert!(
        err.message.contains("seed 4 is listed twice"),
        "{}",
        err.message
    );

    let empty = parse(&format!(r#"{{{BASE}, "seeds": []}}"#));
    assert_eq!(empty.resolved_seeds().unwrap_err().path, "seeds");
    let zero = parse(&format!(r#"{{{BASE}, "repeats": 0}}"#));
    assert_eq!(zero.resolved_seeds().unwrap_err().path, "repeats");
    let many = parse(&format!(r#"{{{BASE}, "repeats": 1001}}"#));
    assert_eq!(many.resolved_seeds().unwrap_err().code, "out_of_range");
}

#[test]
fn a_variant_name_must_be_a_string() {
    let err = try_parse(&format!(r#"{{{BASE}, "variants": [{{"name": 3}}]}}"#)).unwrap_err();
    assert!(err.to_string().contains("`name` must be a string"), "{err}");
}

#[test]
fn metric_names_parse_and_an_unknown_one_lists_the_valid_ones() {
    for metric in Metric::ALL {
        assert_eq!(metric.as_str().parse::<Metric>(), Ok(metric));
    }
    let err = "acc".parse::<Metric>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown metric `acc`; valid metrics: test_acc, test_loss, train_acc, train_loss"
    );
}

#[test]
fn modes_rank_nan_below_every_number() {
    assert!(Mode::Max.is_worse(f64::NAN, -1e300));
    assert!(Mode::Min.is_worse(f64::NAN, 1e300));
    assert!(Mode::Min.is_worse(0.5, 0.4));
    assert!(!Mode::Max.is_worse(0.5, 0.5));
    assert_eq!(Mode::Max.best_of(&[0.2, f64::NAN, 0.7, 0.1]), Some(0.7));
    assert_eq!(Mode::Min.best_of(&[0.2, f64::NAN, 0.7, 0.1]), Some(0.1));
    assert!(Mode::Min.best_of(&[f64::NAN]).unwrap().is_nan());
    assert_eq!(Mode::Min.best_of(&[]), None);
}
