use crate::sweep::{band_series, summarize, ConfigSeries, MemberSeries, Method, Mode};

fn config(name: &str, epochs: u32, members: &[(u64, &[f64])]) -> ConfigSeries {
    ConfigSeries {
        name: name.to_string(),
        epochs,
        members: members
            .iter()
            .map(|&(seed, values)| MemberSeries {
                seed,
                values: values.to_vec(),
            })
            .collect(),
    }
}

#[test]
fn configs_rank_by_mean_final_value_with_the_best_compared_pairwise() {
    let configs = [
        // final 0.86, 0.88, 0.87 → mean 0.87; its best epochs 0.86, 0.88, 0.88.
        config(
            "fixed",
            3,
            &[
                (0, &[0.7, 0.8, 0.86]),
                (1, &[0.7, 0.88, 0.88]),
                (2, &[0.7, 0.88, 0.87]),
            ],
        ),
        // final 0.875, 0.89, 0.88 → mean 0.88167: the best.
        config(
            "cosine",
            3,
            &[
                (0, &[0.6, 0.8, 0.875]),
                (1, &[0.6, 0.8, 0.89]),
                (2, &[0.6, 0.8, 0.88]),
            ],
        ),
        // final 0.10 everywhere: stuck.
        config(
            "factor",
            3,
            &[
                (0, &[0.1, 0.1, 0.1]),
                (1, &[0.1, 0.1, 0.1]),
                (2, &[0.1, 0.1, 0.1]),
            ],
        ),
    ];
    let summary = summarize(&configs, Mode::Max);
    assert_eq!(summary.ranking, [1, 0, 2]);
    assert_eq!(summary.best, Some(1));
    let fixed = &summary.configs[0];
    assert_eq!(
        (fixed.rank, fixed.seeds, fixed.complete),
        (Some(2), 3, true)
    );
    let final_value = fixed.final_value.unwrap();
    assert!((final_value.mean - 0.87).abs() < 1e-12);
    assert!((final_value.std.unwrap() - 0.01).abs() < 1e-12);
    let best_value = fixed.best_value.unwrap();
    assert!((best_value.mean - (0.86 + 0.88 + 0.88) / 3.0).abs() < 1e-12);
    // fixed − cosine per seed: −0.015, −0.01, −0.01 (see the stats test): distinguishable.
    let vs = fixed.vs_best.unwrap();
    assert_eq!((vs.method, vs.pairs), (Method::Paired, 3));
    assert!((vs.mean + 0.035 / 3.0).abs() < 1e-12);
    assert_eq!(fixed.indistinguishable_from_best, Some(false));
    let best = &summary.configs[1];
    assert_eq!(
        (best.rank, best.vs_best, best.indistinguishable_from_best),
        (Some(1), None, Some(true))
    );
    assert_eq!(summary.configs[2].rank, Some(3));
}

#[test]
fn a_noisy_config_close_to_the_best_is_indistinguishable() {
    let configs = [
        config("a", 1, &[(0, &[0.88]), (1, &[0.90]), (2, &[0.89])]),
        // b − a per seed: −0.01, −0.02, +0.01 → −0.00667 ± 4.303·0.00882 = ± 0.038.
        config("b", 1, &[(0, &[0.87]), (1, &[0.88]), (2, &[0.90])]),
    ];
    let summary = summarize(&configs, Mode::Max);
    assert_eq!(summary.best, Some(0));
    assert_eq!(summary.configs[1].indistinguishable_from_best, Some(true));
}

#[test]
fn losses_rank_lowest_first_and_a_diverged_config_ranks_last() {
    let configs = [
        config(
            "diverged",
            2,
            &[(0, &[2.3, f64::NAN]), (1, &[2.3, f64::NAN])],
        ),
        config("good", 2, &[(0, &[0.5, 0.3]), (1, &[0.5, 0.32])]),
        config("fair", 2, &[(0, &[0.6, 0.4]), (1, &[0.6, 0.41])]),
    ];
    let summary = summarize(&configs, Mode::Min);
    assert_eq!(summary.ranking, [1, 2, 0]);
    assert!(summary.configs[0].final_value.unwrap().mean.is_nan());
    // Its best epoch is the finite one.
    assert_eq!(summary.configs[0].best_value.unwrap().mean, 2.3);
    let json = serde_json::to_value(&summary).unwrap();
    assert!(
        json["configs"][0]["final_value"]["mean"].is_null(),
        "NaN is null in JSON"
    );
}

#[test]
fn complete_configs_rank_ahead_of_early_stopped_ones() {
    let configs = [
        // Stopped after 2 of 10 epochs, at a high value.
        config("stopped", 10, &[(0, &[0.5, 0.9]), (1, &[0.5, 0.9])]),
        config("finished", 10, &[(0, &[0.5; 10]), (1, &[0.6; 10])]),
        config("queued", 10, &[(0, &[]), (1, &[])]),
    ];
    let summary = summarize(&configs, Mode::Max);
    assert_eq!(summary.ranking, [1, 0]);
    let stopped = &summary.configs[0];
    assert!(!stopped.complete);
    assert_eq!(
        stopped.vs_best, None,
        "an epoch-2 value is not compared with an epoch-10 one"
    );
    assert_eq!(stopped.indistinguishable_from_best, None);
    let queued = &summary.configs[2];
    assert_eq!(
        (queued.rank, queued.seeds, queued.final_value),
        (None, 0, None)
    );
}

#[test]
fn equal_means_keep_config_order() {
    let configs = [
        config("x", 1, &[(0, &[0.5])]),
        config("y", 1, &[(0, &[0.7])]),
        config("z", 1, &[(0, &[0.7])]),
    ];
    assert_eq!(summarize(&configs, Mode::Max).ranking, [1, 2, 0]);
    assert_eq!(summarize(&configs, Mode::Min).ranking, [0, 1, 2]);
}

#[test]
fn bands_follow_the_members_that_are_still_running() {
    let configs = [config(
        "c",
        3,
        &[
            (0, &[0.1, 0.5, 0.6]),
            (1, &[0.3, 0.7]),
            (2, &[0.2, f64::NAN, 0.8]),
        ],
    )];
    let bands = band_series(&configs);
    assert_eq!(bands.len(), 1);
    let points = &bands[0].points;
    assert_eq!(points.len(), 3);
    // Epoch 1: [0.1, 0.3, 0.2] → mean 0.2, std 0.1, min 0.1, max 0.3.
    assert_eq!((points[0].epoch, points[0].n), (1, 3));
    assert!((points[0].mean - 0.2).abs() < 1e-12);
    assert!((points[0].std.unwrap() - 0.1).abs() < 1e-12);
    assert_eq!((points[0].min, points[0].max), (0.1, 0.3));
    assert!(points[0].ci95.is_some());
    // Epoch 2: the NaN is left out → [0.5, 0.7].
    assert_eq!(points[1].n, 2);
    assert!((points[1].mean - 0.6).abs() < 1e-12);
    // Epoch 3: member 1 stopped after 2 epochs → [0.6, 0.8].
    assert_eq!((points[2].epoch, points[2].n), (3, 2));
    assert_eq!((points[2].min, points[2].max), (0.6, 0.8));
    // One member: no spread.
    let single = band_series(&[config("s", 1, &[(0, &[0.4])])]);
    assert_eq!(
        (single[0].points[0].std, single[0].points[0].ci95),
        (None, None)
    );
    assert!(band_series(&[config("e", 1, &[(0, &[])])])[0]
        .points
        .is_empty());
}
