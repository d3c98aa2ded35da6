use crate::sweep::stats::{
    compare, estimate, mean, paired_difference, sample_std, welch_difference, Method,
};
use crate::sweep::tdist::{incomplete_beta, ln_gamma};
use crate::sweep::{student_t_cdf, student_t_quantile};

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

#[test]
fn t_quantiles_match_published_values() {
    // t(0.975, ν), computed to 17 digits with mpmath (30-digit arithmetic);
    // the printed tables give 12.706, 4.303, 3.182, 2.776, 2.571, 2.262, 2.228,
    // 2.045, 2.042, 1.984, 1.962.
    let table = [
        (1.0, 12.706_204_736_174_705),
        (2.0, 4.302_652_729_749_464),
        (3.0, 3.182_446_305_283_709_6),
        (4.0, 2.776_445_105_197_794_4),
        (5.0, 2.570_581_835_636_315_5),
        (9.0, 2.262_157_162_798_205_5),
        (10.0, 2.228_138_851_986_275),
        (29.0, 2.045_229_642_132_704_3),
        (30.0, 2.042_272_456_301_238),
        (100.0, 1.983_971_518_523_552_3),
        (1000.0, 1.962_339_080_826_408_5),
    ];
    for (df, want) in table {
        let got = student_t_quantile(0.975, df);
        assert!(close(got, want, 1e-12), "df {df}: {got} vs {want}");
    }
    assert!(close(
        student_t_quantile(0.995, 5.0),
        4.032_142_983_555_228,
        1e-12
    ));
    assert!(close(
        student_t_quantile(0.9, 3.0),
        1.637_744_353_696_210_1,
        1e-12
    ));
    // Welch needs real degrees of freedom.
    assert!(close(
        student_t_quantile(0.975, 2.5),
        3.574_654_842_003_683,
        1e-12
    ));
}

#[test]
fn t_quantiles_match_the_closed_forms() {
    // ν = 1 (Cauchy): tan(π(p − ½)); ν = 2: (2p − 1)/√(2p(1 − p)).
    // For p = 0.975 the latter is 0.95/√0.04875 = 4.3026527297494638…, which
    // is also what a 30-digit computation gives. (SciPy's `t.ppf(0.975, 2)`,
    // 4.302652729911275, is off in the tenth digit.)
    for p in [0.6, 0.9, 0.975, 0.999, 0.9999] {
        let cauchy = (std::f64::consts::PI * (p - 0.5)).tan();
        assert!(close(student_t_quantile(p, 1.0), cauchy, 1e-11), "p {p}");
        let two = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        assert!(close(student_t_quantile(p, 2.0), two, 1e-12), "p {p}");
        // ν = 4: with a = 4p(1 − p), q = cos(arccos(√a)/3)/√a, t = 2√(q − 1).
        let a = 4.0 * p * (1.0 - p);
        let q = ((a.sqrt()).acos() / 3.0).cos() / a.sqrt();
        assert!(
            close(student_t_quantile(p, 4.0), 2.0 * (q - 1.0).sqrt(), 1e-11),
            "p {p}"
        );
    }
    assert!(close(
        student_t_quantile(0.975, 2.0),
        4.302_652_729_749_464,
        1e-13
    ));
}

#[test]
fn the_t_cdf_and_quantile_are_inverse_and_symmetric() {
    // P(T ≤ 2; ν = 3) = 0.93033701572057841 (mpmath).
    assert!(close(
        student_t_cdf(2.0, 3.0),
        0.930_337_015_720_578_4,
        1e-13
    ));
    assert_eq!(student_t_cdf(0.0, 7.0), 0.5);
    for df in [1.0, 2.0, 3.7, 12.0, 250.0] {
        for p in [0.01, 0.2, 0.5, 0.8, 0.975] {
            let t = student_t_quantile(p, df);
            assert!(close(student_t_cdf(t, df), p, 1e-12), "df {df} p {p}");
            assert_eq!(student_t_quantile(1.0 - p, df), -t);
        }
    }
    assert!(student_t_quantile(0.0, 3.0).is_nan());
    assert!(student_t_quantile(1.0, 3.0).is_nan());
    assert!(student_t_quantile(0.975, 0.0).is_nan());
    assert!(student_t_quantile(f64::NAN, 3.0).is_nan());
    assert!(student_t_cdf(1.0, -1.0).is_nan());
}

#[test]
fn special_functions_match_known_values() {
    // Γ(½) = √π, Γ(5) = 24, Γ(10) = 362880, Γ(0.1) = 9.513507698668732.
    assert!(close(
        ln_gamma(0.5),
        std::f64::consts::PI.sqrt().ln(),
        1e-14
    ));
    assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-14));
    assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-14));
    assert!(close(ln_gamma(0.1), 9.513_507_698_668_732f64.ln(), 1e-13));
    // I_x(1, 1) = x; I_½(a, a) = ½; I_x(a, 1) = x^a.
    assert!(close(incomplete_beta(0.3, 1.0, 1.0), 0.3, 1e-14));
    assert!(close(incomplete_beta(0.5, 3.5, 3.5), 0.5, 1e-14));
    assert!(close(
        incomplete_beta(0.7, 2.5, 1.0),
        0.7f64.powf(2.5),
        1e-14
    ));
    assert_eq!(incomplete_beta(0.0, 2.0, 3.0), 0.0);
    assert_eq!(incomplete_beta(1.0, 2.0, 3.0), 1.0);
}

#[test]
fn the_t_interval_of_three_accuracies_matches_the_hand_computation() {
    // [0.86, 0.88, 0.87]: mean 2.61/3 = 0.87; deviations −0.01, +0.01, 0;
    // sum of squares 0.0002; variance 0.0002/2 = 0.0001; std 0.01;
    // se = 0.01/√3 = 0.0057735026918962576; t(0.975, 2) = 4.3026527297494639;
    // half-width = 0.024841377117503310; interval [0.845158622882497, 0.894841377117503].
    let est = estimate(&[0.86, 0.88, 0.87]).unwrap();
    assert_eq!(est.n, 3);
    assert!(close(est.mean, 0.87, 1e-15));
    assert!(close(est.std.unwrap(), 0.01, 1e-12));
    let ci = est.ci95.unwrap();
    assert!(close(ci.low, 0.845_158_622_882_496_7, 1e-12), "{}", ci.low);
    assert!(
        close(ci.high, 0.894_841_377_117_503_3, 1e-12),
        "{}",
        ci.high
    );
}

#[test]
fn one_value_has_no_spread_and_no_value_no_estimate() {
    let one = estimate(&[0.9]).unwrap();
    assert_eq!((one.n, one.mean, one.std, one.ci95), (1, 0.9, None, None));
    assert_eq!(estimate(&[]), None);
    assert_eq!(mean(&[]), None);
    assert_eq!(sample_std(&[1.0]), None);
    // Equal values: std 0 and the interval is the point.
    let flat = estimate(&[0.5, 0.5]).unwrap();
    assert_eq!(flat.std, Some(0.0));
    let ci = flat.ci95.unwrap();
    assert_eq!((ci.low, ci.high), (0.5, 0.5));
}

#[test]
fn pairing_on_common_seeds_separates_what_welch_cannot() {
    // a − b per seed: 0.015, 0.01, 0.01 (a's seed luck is b's).
    // Paired: mean 0.035/3 = 0.011666…; deviations 0.003333, −0.001667, −0.001667;
    // sum of squares 1.1111e-5 + 2·2.7778e-6 = 1.6667e-5; variance 8.3333e-6;
    // std 0.0028868; se 0.0016667; half-width 4.3026527·0.0016667 = 0.0071711;
    // interval [0.0044956, 0.0188378]: 0 is outside.
    let a = [(0, 0.875), (1, 0.89), (2, 0.88)];
    let b = [(0, 0.86), (1, 0.88), (2, 0.87)];
    let paired = paired_difference(&a, &b).unwrap();
    assert_eq!((paired.method, paired.pairs), (Method::Paired, 3));
    assert!(close(paired.mean, 0.035 / 3.0, 1e-12));
    let ci = paired.ci95.unwrap();
    assert!(
        close(
            ci.low,
            0.011_666_666_666_666_7 - 0.007_171_087_882_915_8,
            1e-9
        ),
        "{}",
        ci.low
    );
    assert!(
        close(
            ci.high,
            0.011_666_666_666_666_7 + 0.007_171_087_882_915_8,
            1e-9
        ),
        "{}",
        ci.high
    );
    assert_eq!(paired.indistinguishable, Some(false));
    assert_eq!(paired.df, Some(2.0));

    // Welch on the same numbers: means 0.88167 and 0.87, variances
    // 5.8333e-5 and 1e-4 → va = 1.9444e-5, vb = 3.3333e-5, se = 0.0072648;
    // df = (5.2778e-5)² / ((1.9444e-5)²/2 + (3.3333e-5)²/2)
    //    = 2.78549e-9 / (1.89043e-10 + 5.55556e-10) = 3.74093;
    // half-width ≈ 2.85·0.00726 ≈ 0.0207: the interval contains 0.
    let welch = welch_difference(&[0.875, 0.89, 0.88], &[0.86, 0.88, 0.87]).unwrap();
    assert_eq!(welch.method, Method::Welch);
    assert!(
        close(welch.df.unwrap(), 3.740_932_642_487_047_5, 1e-9),
        "{:?}",
        welch.df
    );
    assert_eq!(welch.indistinguishable, Some(true));
    let half = welch.ci95.unwrap().high - welch.mean;
    assert!(close(
        half,
        student_t_quantile(0.975, 3.740_932_642_487_047_5) * 0.007_264_831_572_567_789,
        1e-9
    ));
}

#[test]
fn compare_pairs_when_it_can_and_falls_back_to_welch() {
    let a = [(0, 0.80), (1, 0.82), (2, 0.81)];
    let b = [(0, 0.70), (1, 0.71), (5, 0.72)];
    let d = compare(&a, &b).unwrap();
    assert_eq!((d.method, d.pairs), (Method::Paired, 2));
    let c = [(7, 0.70), (8, 0.74)];
    let d = compare(&a, &c).unwrap();
    assert_eq!((d.method, d.pairs), (Method::Welch, 0));
    assert!(close(d.mean, 0.81 - 0.72, 1e-12));
    // One value each: a difference but no interval, so no verdict.
    let d = compare(&[(0, 0.8)], &[(1, 0.7)]).unwrap();
    assert_eq!((d.ci95, d.indistinguishable), (None, None));
    assert_eq!(compare(&[], &a), None);
}
