//! What a run reports while it trains: per-epoch metrics, per-update records, progress.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One epoch's results, the figures the d2l chapter reports plus timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean batch loss weighted by batch size, over the epoch's examples while the weights
    /// changed (as d2l and the PyTorch reference compute it).
    pub train_loss: f64,
    /// Fraction of the epoch's training examples classified correctly during training.
    pub train_acc: f64,
    /// Mean loss on the test set after the epoch.
    pub test_loss: f64,
    /// Accuracy on the test set after the epoch.
    pub test_acc: f64,
    /// The rate of the epoch's first update.
    pub lr: f64,
    /// Smallest rate applied during the epoch.
    pub lr_min: f64,
    /// Largest rate applied during the epoch.
    pub lr_max: f64,
    /// Wall seconds of the training part of the epoch (without evaluation).
    pub seconds: f64,
    /// Wall seconds of the test-set evaluation.
    pub eval_seconds: f64,
    /// Training examples per second over `seconds`.
    pub examples_per_sec: f64,
}

impl EpochMetrics {
    /// The header of every metrics CSV lrlab writes (`lrlab train`'s `metrics.csv`, the
    /// API's `?format=csv`): one writer, one column order.
    pub const CSV_HEADER: &'static str = "epoch,train_loss,train_acc,test_loss,test_acc,lr,lr_min,lr_max,seconds,eval_seconds,examples_per_sec";

    /// This epoch as a CSV row matching [`EpochMetrics::CSV_HEADER`], every value exact.
    pub fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{},{},{},{},{},{},{}",
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.test_loss,
            self.test_acc,
            self.lr,
            self.lr_min,
            self.lr_max,
            self.seconds,
            self.eval_seconds,
            self.examples_per_sec
        )
    }
}

/// A whole metrics CSV: the header and one row per epoch.
pub fn metrics_csv(rows: &[EpochMetrics]) -> String {
    let mut csv = String::with_capacity(EpochMetrics::CSV_HEADER.len() + 1 + rows.len() * 128);
    csv.push_str(EpochMetrics::CSV_HEADER);
    csv.push('\n');
    for row in rows {
        csv.push_str(&row.csv_row());
        csv.push('\n');
    }
    csv
}

/// One optimizer update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global 0-based update index over the whole run.
    pub step: u64,
    /// Rate applied in this update.
    pub lr: f64,
    /// The batch's mean loss, computed before the update.
    pub loss: f64,
}

impl StepRecord {
    /// The header of a per-update CSV (`lrlab train`'s `steps.csv`).
    pub const CSV_HEADER: &'static str = "epoch,step,lr,loss";

    /// This update as a CSV row of epoch `epoch` (1-based).
    pub fn csv_row(&self, epoch: u32) -> String {
        format!("{epoch},{},{},{}", self.step, self.lr, self.loss)
    }
}

/// Everything an epoch produced, handed to the observer once the epoch is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// The epoch's metrics.
    pub metrics: EpochMetrics,
    /// Every update of the epoch, in order.
    pub steps: Vec<StepRecord>,
}

/// A live progress snapshot for progress bars and event streams.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// 1-based current epoch.
    pub epoch: u32,
    /// Epochs in the run.
    pub epochs: u32,
    /// Updates done in this epoch.
    pub step_in_epoch: u64,
    /// Updates per epoch.
    pub steps_per_epoch: u64,
    /// Updates done over the whole run (including those before a resume).
    pub global_step: u64,
    /// Updates in the whole run.
    pub total_steps: u64,
    /// The latest batch loss the trainer has read back.
    pub batch_loss: f64,
    /// Training examples per second so far in this epoch.
    pub examples_per_sec: f64,
}

/// Receives a run's reports. Implementations store metrics, drive progress bars, raise the
/// stop flag, and so on.
pub trait TrainObserver {
    /// Called at most about 4 times a second during training, plus once at each epoch's end.
    fn on_progress(&mut self, _progress: &Progress) {}

    /// Called once per completed epoch, before that epoch's checkpoint is written: if the
    /// process dies in between, the resumed run redoes the epoch instead of losing its metrics.
    /// An error aborts the run with [`super::TrainError::Observer`].
    fn on_epoch(
        &mut self,
        report: &EpochReport,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// What a [`super::train`] call did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Metrics of the epochs run in this call (not those before a resume).
    pub epochs: Vec<EpochMetrics>,
    /// The completed epoch a checkpoint was resumed from, if any.
    pub resumed_from_epoch: Option<u32>,
    /// Where the final weights were written (only when a checkpoint directory was given).
    pub final_weights: Option<PathBuf>,
    /// Epochs completed in all (with those before a resume); below the plan's epochs when
    /// the run stopped at its `until_epoch`.
    pub epochs_done: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_csv_has_a_header_and_one_line_per_epoch() {
        let row = EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_acc: 0.8,
            test_loss: 0.6,
            test_acc: 0.75,
            lr: 0.3,
            lr_min: 0.3,
            lr_max: 0.3,
            seconds: 2.0,
            eval_seconds: 0.1,
            examples_per_sec: 30000.0,
        };
        let csv = metrics_csv(&[row.clone(), EpochMetrics { epoch: 2, ..row }]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], EpochMetrics::CSV_HEADER);
        assert_eq!(lines[1], "1,0.5,0.8,0.6,0.75,0.3,0.3,0.3,2,0.1,30000");
    }
}
