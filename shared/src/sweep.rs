//! Sweeps: many runs of one base configuration with some fields varied, ranked by one metric, with
//! optional ASHA early stopping. What a person asks for ([`SweepRequest`]) and what the studio answers
//! ([`Sweep`], its [`Trial`]s and [`RungDecision`]s) are here, and so is the plan: which trials a request
//! makes ([`SweepRequest::plan`]) and what is wrong with it ([`SweepRequest::problems`]), so the page shows
//! the trial count and every problem before Start with the same code that refuses a request.

use crate::{RunStatus, TrainConfig};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The most trials one sweep may have.
pub const MAX_TRIALS: u64 = 1000;

/// What `POST /api/sweeps` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRequest {
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// The configuration every trial starts from.
    pub base: TrainConfig,
    /// The fields of [`TrainConfig`] to vary, by their JSON names.
    pub parameters: BTreeMap<String, ParameterSpace>,
    /// How trials are drawn.
    #[serde(default)]
    pub method: SweepMethod,
    /// How many trials a random sweep draws (a grid has one per combination).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<u32>,
    /// Trials trained at once.
    #[serde(default = "one")]
    pub parallel: u32,
    /// Seed of a random sweep's draws.
    #[serde(default)]
    pub seed: u64,
    /// What ranks the trials.
    #[serde(default)]
    pub metric: SweepMetric,
    /// Stop trials that are behind early; `null` trains every trial to its last epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
}

fn one() -> u32 {
    1
}

/// The values one field takes: a list, or a range with a distribution.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterSpace {
    /// These values, in this order (a grid tries each; a random sweep draws among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
    /// The range's lower end (random sweeps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The range's upper end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// How values are drawn from the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
}

impl ParameterSpace {
    /// A list of values.
    pub fn values(values: Vec<Value>) -> Self {
        ParameterSpace { values: Some(values), ..Self::default() }
    }

    /// A range drawn with `distribution`.
    pub fn range(min: f64, max: f64, distribution: Distribution) -> Self {
        ParameterSpace { min: Some(min), max: Some(max), distribution: Some(distribution), values: None }
    }
}

/// How a range is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Uniform on the logarithm: as many draws between 0.001 and 0.01 as between 0.01 and 0.1.
    LogUniform,
    /// Uniform.
    Uniform,
    /// A whole number, each in `[min, max]` equally likely.
    IntUniform,
}

/// How a sweep chooses its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepMethod {
    /// Every combination of the listed values, in order (the last field varies fastest).
    #[default]
    Grid,
    /// `trials` draws, from a seeded generator.
    Random,
}

/// The metric that ranks trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepMetric {
    /// Test accuracy: higher is better.
    #[default]
    TestAccuracy,
    /// Test loss: lower is better.
    TestLoss,
}

impl SweepMetric {
    /// True if `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            SweepMetric::TestAccuracy => a > b,
            SweepMetric::TestLoss => a < b,
        }
    }

    /// The metric of one epoch.
    pub fn of(self, epoch: &crate::EpochMetrics) -> f64 {
        match self {
            SweepMetric::TestAccuracy => epoch.test_accuracy,
            SweepMetric::TestLoss => epoch.test_loss,
        }
    }

    /// The value as people read it: "63.0 %" or "0.912".
    pub fn show(self, value: f64) -> String {
        match self {
            SweepMetric::TestAccuracy => format!("{:.1} %", value * 100.0),
            SweepMetric::TestLoss => format!("{value:.3}"),
        }
    }

    /// Its name in sentences.
    pub fn label(self) -> &'static str {
        match self {
            SweepMetric::TestAccuracy => "test accuracy",
            SweepMetric::TestLoss => "test loss",
        }
    }
}

/// Early stopping of a sweep's trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    /// Asynchronous successive halving.
    pub asha: Asha,
}

/// ASHA (Li et al., MLSys 2020): rungs at `grace_epochs`, `grace_epochs * eta`, `grace_epochs * eta^2`,
/// ... epochs; at each, a trial goes on only if it is in the top `1/eta` of the trials that reached that
/// rung, judged as [`AshaVariant`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asha {
    /// Epochs every trial trains before its first decision.
    pub grace_epochs: u32,
    /// Each rung keeps one trial in `eta`; rungs are `eta` times further apart each time.
    pub eta: u32,
    /// When a trial is judged at a rung; the stopping variant when absent.
    #[serde(default)]
    pub variant: AshaVariant,
}

/// When ASHA judges a trial that reached a rung.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AshaVariant {
    /// As it arrives (Ray Tune's `ASHAScheduler`): it goes on only if it is in the top `1/eta` of the
    /// trials that reached the rung so far, itself included; the first to arrive always goes on.
    #[default]
    Stopping,
    /// The paper's own: it waits at the rung, and goes on (is promoted) once it is in the top
    /// `floor(n/eta)` of the `n` trials that reached it; a free slot promotes a waiting trial, highest rung
    /// first, before it starts a new one. When nothing else is left to train, the best waiting trial of a
    /// rung that no trial went on from goes on, and the others are pruned.
    Promotion,
}

impl AshaVariant {
    /// Its name in sentences.
    pub fn label(self) -> &'static str {
        match self {
            AshaVariant::Stopping => "stopping",
            AshaVariant::Promotion => "promotion",
        }
    }
}

impl Asha {
    /// The epochs, below `epochs`, after which a trial of `epochs` epochs is judged.
    pub fn rungs(self, epochs: u32) -> Vec<u32> {
        let mut rungs = Vec::new();
        let mut rung = u64::from(self.grace_epochs.max(1));
        while rung < u64::from(epochs) {
            rungs.push(rung as u32);
            rung *= u64::from(self.eta.max(2));
        }
        rungs
    }

    /// The first rung after `epochs_done` for a trial of `epochs` epochs, if any is left.
    pub fn next_rung(self, epochs_done: u32, epochs: u32) -> Option<u32> {
        self.rungs(epochs).into_iter().find(|&rung| rung > epochs_done)
    }
}

/// One trial's parameter values, by field name.
pub type TrialParameters = BTreeMap<String, Value>;

impl SweepRequest {
    /// The trials this request makes, in order, or the sentences saying why it makes none.
    pub fn plan(&self) -> Result<Vec<TrialParameters>, Vec<String>> {
        let problems = self.problems_of_shape();
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(match self.method {
            SweepMethod::Grid => self.grid(),
            SweepMethod::Random => self.draws(),
        })
    }

    /// How many trials the request makes, if its shape is valid.
    pub fn trial_count(&self) -> Option<u64> {
        if !self.problems_of_shape().is_empty() {
            return None;
        }
        Some(match self.method {
            SweepMethod::Grid => self.grid_size(),
            SweepMethod::Random => u64::from(self.trials.unwrap_or(0)),
        })
    }

    /// Every problem of the request, a sentence each: its shape, then each trial's configuration checked
    /// as a run's is (`TrainConfig::problems`), then `parallel` against `slots` (what the executor can
    /// train at once). Empty when it can start.
    pub fn problems(&self, slots: u32) -> Vec<String> {
        self.checked_trials(slots).err().unwrap_or_default()
    }

    /// The trials of the plan, each with its configuration, when the request has no problem (see
    /// [`SweepRequest::problems`]); else its problems. Plans once and builds each configuration once.
    pub fn checked_trials(&self, slots: u32) -> Result<Vec<(TrialParameters, TrainConfig)>, Vec<String>> {
        let (trials, mut problems) = match self.plan() {
            Ok(plan) => self.configured(plan),
            Err(problems) => (Vec::new(), problems),
        };
        if self.parallel == 0 {
            problems.push("parallel must be at least 1 trial at a time".to_string());
        } else if self.parallel > slots {
            problems.push(format!(
                "parallel is {} but the studio trains at most {slots} run{} at once (its slots)",
                self.parallel,
                if slots == 1 { "" } else { "s" }
            ));
        }
        if problems.is_empty() {
            Ok(trials)
        } else {
            Err(problems)
        }
    }

    /// A trial's configuration: the base with `parameters` set.
    pub fn trial_config(&self, parameters: &TrialParameters) -> Result<TrainConfig, String> {
        trial_config(&self.base, parameters)
    }

    /// Each trial with its configuration, and the problems of those that have any (at most 20 sentences).
    fn configured(&self, plan: Vec<TrialParameters>) -> (Vec<(TrialParameters, TrainConfig)>, Vec<String>) {
        let mut problems: Vec<String> = Vec::new();
        let mut trials = Vec::with_capacity(plan.len());
        for (index, parameters) in plan.into_iter().enumerate() {
            let found = match self.trial_config(&parameters) {
                Ok(config) => {
                    let found = config.problems().into_iter().map(|problem| problem.message).collect();
                    trials.push((parameters.clone(), config));
                    found
                }
                Err(problem) => vec![problem],
            };
            for problem in found {
                let sentence = format!("trial {} ({}): {problem}", index + 1, describe(&parameters));
                if problems.len() < 20 {
                    problems.push(sentence);
                }
            }
        }
        (trials, problems)
    }

    fn problems_of_shape(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.parameters.is_empty() {
            problems.push("a sweep varies at least one setting: parameters is empty".to_string());
        }
        let fields = config_fields(&self.base);
        for (name, space) in &self.parameters {
            if !fields.contains(name) {
                problems.push(format!("unknown field {name:?}: a sweep varies the settings of a run, such as lr"));
                continue;
            }
            problems.extend(self.space_problem(name, space));
        }
        match (self.method, self.trials) {
            (SweepMethod::Random, None | Some(0)) => {
                problems.push("a random sweep needs trials: how many to draw (at least 1)".to_string())
            }
            (SweepMethod::Random, Some(trials)) if u64::from(trials) > MAX_TRIALS => {
                problems.push(format!("trials is {trials}, above the {MAX_TRIALS} a sweep may have"))
            }
            (SweepMethod::Grid, _) if problems.is_empty() && self.grid_size() > MAX_TRIALS => problems.push(format!(
                "the grid has {} trials, above the {MAX_TRIALS} a sweep may have: list fewer values",
                self.grid_size()
            )),
            (SweepMethod::Grid, Some(trials)) if problems.is_empty() && u64::from(trials) != self.grid_size() => {
                problems.push(format!(
                    "a grid has one trial per combination ({}); leave trials out or set it to that",
                    self.grid_size()
                ))
            }
            _ => {}
        }
        if let Some(EarlyStopping { asha }) = self.early_stopping {
            if asha.grace_epochs == 0 {
                problems.push("ASHA's grace_epochs must be at least 1 epoch".to_string());
            }
            if asha.eta < 2 {
                problems.push("ASHA's eta must be at least 2 (it keeps one trial in eta at each rung)".to_string());
            }
        }
        problems
    }

    fn space_problem(&self, name: &str, space: &ParameterSpace) -> Option<String> {
        let range = (space.min, space.max, space.distribution);
        match (&space.values, range) {
            (Some(values), (None, None, None)) if values.is_empty() => {
                Some(format!("{name}: values is empty; list at least one"))
            }
            (Some(_), (None, None, None)) => None,
            (Some(_), _) => Some(format!("{name}: give either values or a range (min, max, distribution), not both")),
            (None, (Some(_), Some(_), Some(_))) if self.method == SweepMethod::Grid => {
                Some(format!("{name}: a grid sweep needs a list of values; a range needs method \"random\""))
            }
            (None, (Some(min), Some(max), Some(distribution))) => range_problem(name, min, max, distribution),
            (None, _) => Some(format!("{name}: give values, or min, max and distribution")),
        }
    }

    fn grid_size(&self) -> u64 {
        self.parameters.values().map(|space| space.values.as_ref().map_or(1, |v| v.len() as u64).max(1)).product()
    }

    fn grid(&self) -> Vec<TrialParameters> {
        let mut trials = vec![TrialParameters::new()];
        for (name, space) in &self.parameters {
            let values = space.values.clone().unwrap_or_default();
            trials = trials
                .into_iter()
                .flat_map(|trial| {
                    values.iter().map(move |value| {
                        let mut next = trial.clone();
                        next.insert(name.clone(), value.clone());
                        next
                    })
                })
                .collect();
        }
        trials
    }

    fn draws(&self) -> Vec<TrialParameters> {
        let mut generator = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed);
        (0..self.trials.unwrap_or(0))
            .map(|_| self.parameters.iter().map(|(name, space)| (name.clone(), draw(space, &mut generator))).collect())
            .collect()
    }
}

fn range_problem(name: &str, min: f64, max: f64, distribution: Distribution) -> Option<String> {
    if !min.is_finite() || !max.is_finite() {
        return Some(format!("{name}: min and max must be numbers"));
    }
    if min > max {
        return Some(format!("{name}: min ({min}) is above max ({max})"));
    }
    match distribution {
        Distribution::LogUniform if min <= 0.0 => {
            Some(format!("{name}: a log_uniform range must be above 0, but min is {min}"))
        }
        Distribution::IntUniform if min.fract() != 0.0 || max.fract() != 0.0 => {
            Some(format!("{name}: an int_uniform range needs whole numbers for min and max"))
        }
        _ => None,
    }
}

/// One draw from `space`.
fn draw(space: &ParameterSpace, generator: &mut impl Rng) -> Value {
    if let Some(values) = &space.values {
        return values[generator.random_range(0..values.len())].clone();
    }
    let (min, max) = (space.min.unwrap_or(0.0), space.max.unwrap_or(0.0));
    let unit: f64 = generator.random();
    match space.distribution.unwrap_or(Distribution::Uniform) {
        Distribution::Uniform => Value::from(min + unit * (max - min)),
        Distribution::LogUniform => Value::from((min.ln() + unit * (max.ln() - min.ln())).exp()),
        Distribution::IntUniform => Value::from(generator.random_range(min as i64..=max as i64)),
    }
}

/// The JSON names of every [`TrainConfig`] field.
fn config_fields(base: &TrainConfig) -> Vec<String> {
    match serde_json::to_value(base) {
        Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// `base` with `parameters` set, through its JSON form, so every field can vary and a value of the
/// wrong type gets serde's sentence.
pub fn trial_config(base: &TrainConfig, parameters: &TrialParameters) -> Result<TrainConfig, String> {
    let mut json = serde_json::to_value(base).map_err(|e| e.to_string())?;
    if let Value::Object(fields) = &mut json {
        for (name, value) in parameters {
            fields.insert(name.clone(), value.clone());
        }
    }
    serde_json::from_value(json).map_err(|e| e.to_string())
}

/// A trial's parameters as people read them: "lr = 0.01, batch_size = 32".
pub fn describe(parameters: &TrialParameters) -> String {
    let shown: Vec<String> = parameters.iter().map(|(name, value)| format!("{name} = {}", show_value(value))).collect();
    shown.join(", ")
}

/// One parameter value as people read it: numbers to four significant digits, strings bare.
pub fn show_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) if number.is_f64() => {
            let x = number.as_f64().unwrap_or(0.0);
            if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
                format!("{x:.3e}")
            } else {
                format!("{}", round4(x))
            }
        }
        other => other.to_string(),
    }
}

fn round4(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let digits = 4 - 1 - x.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits.max(0));
    (x * scale).round() / scale
}

/// Where a sweep is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepStatus {
    /// Trials are training or waiting to.
    Running,
    /// Stopped by a person; `/resume` continues it.
    Stopped,
    /// Every trial ended.
    Completed,
}

impl SweepStatus {
    /// The lower-case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepStatus::Running => "running",
            SweepStatus::Stopped => "stopped",
            SweepStatus::Completed => "completed",
        }
    }

    /// Parses the name written by [`SweepStatus::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        [SweepStatus::Running, SweepStatus::Stopped, SweepStatus::Completed].into_iter().find(|s| s.as_str() == name)
    }
}

/// A run's place in a sweep (`Run.sweep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepRef {
    /// The sweep.
    pub id: u64,
    /// The trial, numbered from 1.
    pub trial: u32,
}

/// A sweep as `GET /api/sweeps/{id}` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// Identifier, unique within a data directory.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Where it is.
    pub status: SweepStatus,
    /// What was asked for.
    pub request: SweepRequest,
    /// Seconds since the Unix epoch when it was created.
    pub created_at: u64,
    /// Every trial, ranked by the metric (best first; trials without a result after, in order).
    pub trials: Vec<Trial>,
    /// Every early-stopping decision, in the order made.
    #[serde(default)]
    pub decisions: Vec<RungDecision>,
}

impl Sweep {
    /// The trial with the best metric, if any has one.
    pub fn best(&self) -> Option<&Trial> {
        self.trials.first().filter(|trial| trial.best_metric.is_some())
    }
}

/// One trial of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Its number, from 1, in the order planned.
    pub trial: u32,
    /// Its parameter values.
    pub parameters: TrialParameters,
    /// Its run, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<u64>,
    /// Its run's status; `null` until its run is created.
    pub status: Option<RunStatus>,
    /// Epochs its run has finished.
    pub epochs_done: u32,
    /// The best value of the sweep's metric over its epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_metric: Option<f64>,
    /// Times it was retried after a failure.
    pub retries: u32,
    /// Why it ended early, for a pruned or failed trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The rung (an epoch) it waits at to be promoted, in ASHA's promotion variant; its run is stopped
    /// meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_at: Option<u32>,
}

impl SweepMetric {
    /// The best finite value of the metric over `epochs`.
    pub fn best(self, epochs: &[crate::EpochMetrics]) -> Option<f64> {
        let values = epochs.iter().map(|epoch| self.of(epoch)).filter(|value| value.is_finite());
        values.reduce(|best, value| if self.better(value, best) { value } else { best })
    }
}

impl Trial {
    /// This trial as its run `run` now stands: status, epochs done and best metric from the run.
    pub fn with_run(&self, metric: SweepMetric, run: &crate::Run) -> Trial {
        Trial {
            status: Some(run.status),
            epochs_done: run.epochs.len() as u32,
            best_metric: metric.best(&run.epochs),
            ..self.clone()
        }
    }

    /// True once it will not train again by itself: its run ended, and it does not wait at a rung.
    pub fn is_done(&self) -> bool {
        self.status.is_some_and(RunStatus::is_finished) && self.waiting_at.is_none()
    }

    /// Its status in a word: its run's, `"waiting"` while it waits at a rung (its run stopped), or
    /// `"pending"` before its run is created.
    pub fn status_word(&self) -> &'static str {
        match self.status {
            Some(RunStatus::Stopped) if self.waiting_at.is_some() => "waiting",
            Some(status) => status.as_str(),
            None => "pending",
        }
    }
}

/// Ranks trials by their best `metric`, best first; trials without a result follow, in order.
pub fn rank(trials: &mut [Trial], metric: SweepMetric) {
    trials.sort_by(|a, b| match (a.best_metric, b.best_metric) {
        (Some(x), Some(y)) if metric.better(x, y) => std::cmp::Ordering::Less,
        (Some(x), Some(y)) if metric.better(y, x) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        _ => a.trial.cmp(&b.trial),
    });
}

/// One early-stopping decision: whether a trial went on after a rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungDecision {
    /// The trial judged.
    pub trial: u32,
    /// The rung: the epoch it had just finished.
    pub epoch: u32,
    /// Its metric after that epoch.
    pub metric: f64,
    /// How many trials had reached this rung, itself included.
    pub reached: u32,
    /// The worst metric that still went on: the last of the top `1/eta`.
    pub cut: f64,
    /// True if it goes on.
    pub continued: bool,
    /// The decision in a sentence.
    pub sentence: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(parameters: serde_json::Value) -> SweepRequest {
        serde_json::from_value(json!({"name": "s", "base": {"dataset": "d"}, "parameters": parameters})).unwrap()
    }

    #[test]
    fn a_grid_is_every_combination_with_the_last_field_fastest() {
        let sweep = request(json!({"batch_size": {"values": [16, 32]}, "lr": {"values": [0.1, 0.01, 0.001]}}));
        let trials = sweep.plan().unwrap();
        assert_eq!(trials.len(), 6);
        assert_eq!(sweep.trial_count(), Some(6));
        assert_eq!(describe(&trials[0]), "batch_size = 16, lr = 0.1");
        assert_eq!(describe(&trials[1]), "batch_size = 16, lr = 0.01");
        assert_eq!(describe(&trials[5]), "batch_size = 32, lr = 0.001");
        let config = sweep.trial_config(&trials[5]).unwrap();
        assert_eq!((config.batch_size, config.lr, config.dataset.as_str()), (32, 0.001, "d"));
    }

    #[test]
    fn random_draws_follow_the_seed_and_stay_in_their_ranges() {
        let mut sweep = request(json!({
            "lr": {"min": 1e-4, "max": 1e-1, "distribution": "log_uniform"},
            "epochs": {"min": 1, "max": 3, "distribution": "int_uniform"},
            "momentum": {"min": 0.5, "max": 0.9, "distribution": "uniform"},
            "optimizer": {"values": ["sgd", "adamw"]}
        }));
        sweep.method = SweepMethod::Random;
        sweep.trials = Some(50);
        let first = sweep.plan().unwrap();
        assert_eq!(first, sweep.plan().unwrap(), "one seed, one plan");
        for trial in &first {
            let config = sweep.trial_config(trial).unwrap();
            assert!((1e-4..=1e-1).contains(&config.lr) && (1..=3).contains(&config.epochs));
            assert!((0.5..=0.9).contains(&config.momentum));
        }
        let below_a_hundredth = first.iter().filter(|t| t["lr"].as_f64().unwrap() < 1e-2).count();
        assert!(below_a_hundredth > 25, "log-uniform: two decades of three below 0.01, got {below_a_hundredth} of 50");
        sweep.seed = 1;
        assert_ne!(first, sweep.plan().unwrap());
    }

    #[test]
    fn every_problem_gets_its_sentence() {
        let cases = [
            (json!({}), "parameters is empty"),
            (json!({"learning_rate": {"values": [1]}}), "unknown field \"learning_rate\""),
            (json!({"lr": {"values": []}}), "values is empty"),
            (json!({"lr": {"min": 0.1, "max": 0.01, "distribution": "uniform"}}), "a range needs method \"random\""),
            (json!({"lr": {"values": [0.1, -1.0]}}), "trial 2 (lr = -1)"),
            (json!({"lr": {"values": ["fast"]}}), "trial 1 (lr = fast): invalid type"),
            (
                json!({"epochs": {"values": (1..=40).collect::<Vec<_>>()}, "seed": {"values": (0..30).collect::<Vec<_>>()}}),
                "the grid has 1200 trials",
            ),
        ];
        for (parameters, expected) in cases {
            let problems = request(parameters.clone()).problems(4);
            assert!(problems.iter().any(|p| p.contains(expected)), "{parameters}: {problems:?}");
        }
        let mut random = request(json!({"lr": {"min": 0.1, "max": 0.01, "distribution": "log_uniform"}}));
        random.method = SweepMethod::Random;
        let problems = random.problems(1);
        assert!(problems.iter().any(|p| p.contains("min (0.1) is above max (0.01)")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("needs trials")), "{problems:?}");
        let mut wide = request(json!({"lr": {"values": [0.1]}}));
        wide.parallel = 3;
        assert_eq!(wide.problems(2), ["parallel is 3 but the studio trains at most 2 runs at once (its slots)"]);
        assert!(wide.problems(3).is_empty());
    }

    #[test]
    fn a_trial_waiting_at_a_rung_says_so_and_one_without_a_run_is_pending() {
        let trial = |status: Option<RunStatus>, waiting_at: Option<u32>| Trial {
            trial: 1,
            parameters: TrialParameters::new(),
            run_id: None,
            status,
            epochs_done: 1,
            best_metric: None,
            retries: 0,
            note: None,
            waiting_at,
        };
        assert_eq!(trial(Some(RunStatus::Stopped), Some(1)).status_word(), "waiting");
        assert_eq!(trial(Some(RunStatus::Stopped), None).status_word(), "stopped");
        assert_eq!(trial(Some(RunStatus::Running), Some(1)).status_word(), "running", "promoted meanwhile");
        assert_eq!(trial(None, None).status_word(), "pending");
        assert!(!trial(Some(RunStatus::Stopped), Some(1)).is_done(), "a waiting trial will train again");
        assert!(trial(Some(RunStatus::Pruned), None).is_done() && !trial(None, None).is_done());
        let json = serde_json::to_value(trial(Some(RunStatus::Stopped), Some(3))).unwrap();
        assert_eq!(json["waiting_at"], 3);
        assert!(serde_json::to_value(trial(None, None)).unwrap().get("waiting_at").is_none());
    }

    #[test]
    fn asha_rungs_grow_by_eta_below_the_last_epoch() {
        let asha = Asha { grace_epochs: 1, eta: 3, variant: AshaVariant::Stopping };
        assert_eq!(asha.rungs(10), [1, 3, 9]);
        assert_eq!(asha.rungs(9), [1, 3]);
        assert_eq!(asha.next_rung(0, 10), Some(1));
        assert_eq!(asha.next_rung(1, 10), Some(3));
        assert_eq!(asha.next_rung(9, 10), None);
        assert_eq!(Asha { grace_epochs: 2, eta: 2, variant: AshaVariant::Stopping }.rungs(2), Vec::<u32>::new());
    }

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(show_value(&json!(0.0001)), "1.000e-4");
        assert_eq!(show_value(&json!(0.012345)), "0.01235");
        assert_eq!(show_value(&json!(32)), "32");
        assert_eq!(show_value(&json!("adamw")), "adamw");
    }
}
