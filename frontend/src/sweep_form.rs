//! The sweep editor's fields as typed, and the [`SweepRequest`] they describe.
//!
//! As in the training form ([`crate::form`]), numbers are kept as the text in each box. [`SweepDraft::request`]
//! reads them into a request; what cannot be read (a value that is not a number) is a sentence of its own,
//! and everything else is judged by [`SweepRequest::problems`], the rules the server applies to
//! `POST /api/sweeps`. [`cost`] says how many trials and epochs the request trains at most.

use serde_json::Value as Json;
use shared::fields::{Kind, Value};
use shared::sweep::{
    Asha, AshaVariant, Distribution, EarlyStopping, ParameterSpace, SweepMethod, SweepMetric, SweepRequest,
};
use shared::{Field, TrainConfig, FIELDS};

/// The settings the editor's menu offers first, in this order: the ones people sweep most.
pub const FIRST_OFFERED: [&str; 9] =
    ["lr", "batch_size", "momentum", "weight_decay", "epochs", "optimizer", "mode", "schedule", "label_smoothing"];

/// Every setting a sweep can vary, in the editor's menu order: [`FIRST_OFFERED`], then the rest of the form's
/// settings but the dataset and the weights.
pub fn sweepable() -> Vec<&'static Field> {
    let first = FIRST_OFFERED.iter().filter_map(|name| shared::fields::field(name));
    let rest = FIELDS.iter().filter(|f| !matches!(f.kind, Kind::Name) && !FIRST_OFFERED.contains(&f.name));
    first.chain(rest).collect()
}

/// How one varied setting's values are given, as typed.
#[derive(Debug, Clone, PartialEq)]
pub enum SpaceDraft {
    /// A list of numbers, separated by commas or spaces.
    Values(String),
    /// The ticked options of a choice or an on/off setting, by their JSON names.
    Ticked(Vec<String>),
    /// A range, for random sweeps: its ends as typed and how values are drawn.
    Range {
        /// The lower end as typed.
        min: String,
        /// The upper end as typed.
        max: String,
        /// How values are drawn from it.
        distribution: Distribution,
    },
}

/// A change to one part of a range, as typed or chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum RangeEdit {
    /// The lower end.
    Min(String),
    /// The upper end.
    Max(String),
    /// How values are drawn.
    Drawn(Distribution),
}

/// One setting the sweep varies.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterDraft {
    /// The setting's JSON name.
    pub name: &'static str,
    /// Its values as typed.
    pub space: SpaceDraft,
}

impl ParameterDraft {
    /// The setting `field`, starting from its value in `base`: a number as a list of that one value, a choice
    /// with that option ticked.
    pub fn new(field: &'static Field, base: &TrainConfig) -> Self {
        let space = match (field.value)(base) {
            Value::Choice(name) => SpaceDraft::Ticked(vec![name.to_string()]),
            Value::Flag(on) => SpaceDraft::Ticked(vec![on.to_string()]),
            Value::Whole(n) => SpaceDraft::Values(n.map_or_else(String::new, |n| n.to_string())),
            Value::Decimal(x) => SpaceDraft::Values(x.map_or_else(String::new, |x| x.to_string())),
            Value::Name(name) => SpaceDraft::Values(name),
        };
        ParameterDraft { name: field.name, space }
    }

    /// The setting's entry in the field table.
    pub fn field(&self) -> Option<&'static Field> {
        shared::fields::field(self.name)
    }

    /// The options a person ticks among, as (JSON name, label): a choice's, or on and off; empty for numbers.
    pub fn options(&self) -> Vec<(&'static str, &'static str)> {
        match self.field().map(|f| f.kind) {
            Some(Kind::Choice(options)) => options(),
            Some(Kind::Flag) => vec![("true", "on"), ("false", "off")],
            _ => Vec::new(),
        }
    }

    /// The distribution a range of this setting starts with: whole numbers for a whole setting, log-uniform
    /// for a positive decimal such as the learning rate, else uniform.
    pub fn default_distribution(&self, base: &TrainConfig) -> Distribution {
        match self.field().map(|f| (f.value)(base)) {
            Some(Value::Whole(_)) => Distribution::IntUniform,
            Some(Value::Decimal(Some(x))) if x > 0.0 => Distribution::LogUniform,
            _ => Distribution::Uniform,
        }
    }

    /// The space as the request names it, and a sentence for each value that could not be read (left out
    /// of the space). A range end that is not a number is left for [`SweepRequest::problems`] to name.
    pub fn space(&self) -> (ParameterSpace, Vec<String>) {
        match &self.space {
            SpaceDraft::Values(text) => {
                let (values, unreadable) = parse_values(self.name, self.whole(), text);
                (ParameterSpace::values(values), unreadable)
            }
            SpaceDraft::Ticked(names) => {
                let flag = matches!(self.field().map(|f| f.kind), Some(Kind::Flag));
                let value = |name: &String| if flag { Json::Bool(name == "true") } else { Json::from(name.as_str()) };
                (ParameterSpace::values(names.iter().map(value).collect()), Vec::new())
            }
            SpaceDraft::Range { min, max, distribution } => {
                let end = |text: &str| number(text).unwrap_or(f64::NAN);
                (ParameterSpace::range(end(min), end(max), *distribution), Vec::new())
            }
        }
    }

    /// Gives the values as a range instead, from the lowest to the highest value listed (empty ends when
    /// none can be read), drawn as suits the setting in `base`.
    pub fn to_range(&mut self, base: &TrainConfig) {
        let SpaceDraft::Values(text) = &self.space else { return };
        let numbers: Vec<f64> = parse_values(self.name, false, text).0.iter().filter_map(Json::as_f64).collect();
        let end = |pick: fn(f64, f64) -> f64| {
            numbers.iter().copied().reduce(pick).map_or_else(String::new, |x| x.to_string())
        };
        let distribution = self.default_distribution(base);
        self.space = SpaceDraft::Range { min: end(f64::min), max: end(f64::max), distribution };
    }

    /// Gives the range as a list of its two ends instead.
    pub fn to_values(&mut self) {
        if let SpaceDraft::Range { min, max, .. } = &self.space {
            let ends: Vec<&str> = [min.trim(), max.trim()].into_iter().filter(|end| !end.is_empty()).collect();
            self.space = SpaceDraft::Values(ends.join(", "));
        }
    }

    /// Changes one part of a range; nothing when the values are not given as a range.
    pub fn edit_range(&mut self, edit: RangeEdit) {
        if let SpaceDraft::Range { min, max, distribution } = &mut self.space {
            match edit {
                RangeEdit::Min(text) => *min = text,
                RangeEdit::Max(text) => *max = text,
                RangeEdit::Drawn(drawn) => *distribution = drawn,
            }
        }
    }

    fn whole(&self) -> bool {
        matches!(self.field().map(|f| f.kind), Some(Kind::Whole { .. }))
    }
}

/// The values typed for setting `name`, separated by commas or spaces (whole numbers when `whole`), and a
/// sentence for each that is not a number. An empty list is read as one, for [`SweepRequest::problems`] to
/// name.
pub fn parse_values(name: &str, whole: bool, text: &str) -> (Vec<Json>, Vec<String>) {
    let mut values = Vec::new();
    let mut unreadable = Vec::new();
    for token in text.split(|c: char| c == ',' || c.is_whitespace()).filter(|token| !token.is_empty()) {
        let read = if whole {
            token.parse::<u64>().ok().map(Json::from)
        } else {
            number(token).and_then(serde_json::Number::from_f64).map(Json::Number)
        };
        match read {
            Some(value) => values.push(value),
            None => {
                let kind = if whole { "a whole number" } else { "a number" };
                unreadable.push(format!("{name}: \"{token}\" is not {kind}"));
            }
        }
    }
    (values, unreadable)
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// The sweep editor as the person has filled it in.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepDraft {
    /// A name for people; empty lets the server name it after what it varies.
    pub name: String,
    /// The configuration every trial starts from.
    pub base: TrainConfig,
    /// The settings varied, in the order they were added.
    pub parameters: Vec<ParameterDraft>,
    /// Grid or random.
    pub method: SweepMethod,
    /// How many trials a random sweep draws, as typed.
    pub trials: String,
    /// Trials trained at once, as typed.
    pub parallel: String,
    /// The random sweep's seed, as typed.
    pub seed: String,
    /// What ranks the trials.
    pub metric: SweepMetric,
    /// Which ASHA judges the trials at its rungs, if any.
    pub asha: Option<AshaVariant>,
    /// ASHA's grace epochs, as typed.
    pub grace_epochs: String,
    /// ASHA's eta, as typed.
    pub eta: String,
}

impl SweepDraft {
    /// A new sweep of `base`, varying nothing yet: a grid, one trial at a time, ranked by test accuracy.
    pub fn new(base: TrainConfig) -> Self {
        SweepDraft {
            name: String::new(),
            base,
            parameters: Vec::new(),
            method: SweepMethod::Grid,
            trials: "10".into(),
            parallel: "1".into(),
            seed: "0".into(),
            metric: SweepMetric::TestAccuracy,
            asha: None,
            grace_epochs: "1".into(),
            eta: "3".into(),
        }
    }

    /// Varies the setting `field` too (from its base value), unless it already is.
    pub fn vary(&mut self, field: &'static Field) {
        if !self.parameters.iter().any(|p| p.name == field.name) {
            self.parameters.push(ParameterDraft::new(field, &self.base));
        }
    }

    /// Stops varying the setting named `name`.
    pub fn keep(&mut self, name: &str) {
        self.parameters.retain(|p| p.name != name);
    }

    /// The varied setting named `name`, to change how its values are given.
    pub fn parameter_mut(&mut self, name: &str) -> Option<&mut ParameterDraft> {
        self.parameters.iter_mut().find(|p| p.name == name)
    }

    /// The request these fields describe, and a sentence for each value or box that could not be read (the
    /// request leaves such a value out, or takes the default of such a number).
    pub fn request(&self) -> (SweepRequest, Vec<String>) {
        let mut unreadable = Vec::new();
        let mut parameters = std::collections::BTreeMap::new();
        for parameter in &self.parameters {
            let (space, problems) = parameter.space();
            parameters.insert(parameter.name.to_string(), space);
            unreadable.extend(problems);
        }
        let mut whole = |text: &str, what: &str, default: u64| match text.trim().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                unreadable.push(format!("{what} must be a whole number"));
                default
            }
        };
        let trials = (self.method == SweepMethod::Random).then(|| whole(&self.trials, "trials", 0) as u32);
        let parallel = whole(&self.parallel, "parallel", 1) as u32;
        let seed = if self.seed.trim().is_empty() { 0 } else { whole(&self.seed, "seed", 0) };
        let early_stopping = self.asha.map(|variant| EarlyStopping {
            asha: Asha {
                grace_epochs: whole(&self.grace_epochs, "ASHA's grace epochs", 1) as u32,
                eta: whole(&self.eta, "ASHA's eta", 3) as u32,
                variant,
            },
        });
        let request = SweepRequest {
            name: self.name.trim().to_string(),
            base: self.base.clone(),
            parameters,
            method: self.method,
            trials,
            parallel,
            seed,
            metric: self.metric,
            early_stopping,
        };
        (request, unreadable)
    }

    /// Every problem, a sentence each: the boxes that could not be read, then [`SweepRequest::problems`]
    /// with `slots`, the most trials the server trains at once. Empty when the sweep can start.
    pub fn problems(&self, slots: u32) -> Vec<String> {
        let (request, mut problems) = self.request();
        problems.extend(request.problems(slots));
        problems
    }
}

/// What the request trains at most: `"12 trials × 5 epochs = 60 epochs at most"`, with a second sentence on
/// what ASHA changes. `None` while the request makes no trials.
pub fn cost(request: &SweepRequest) -> Option<String> {
    let plan = request.plan().ok().filter(|plan| !plan.is_empty())?;
    let epochs: Vec<u32> =
        plan.iter().map(|trial| request.trial_config(trial).map_or(request.base.epochs, |c| c.epochs)).collect();
    let total: u64 = epochs.iter().map(|&e| u64::from(e)).sum();
    let trials = count(plan.len() as u64, "trial");
    let most = epochs.iter().copied().max().unwrap_or(0);
    let mut line = if epochs.iter().all(|&e| e == most) {
        format!("{trials} × {} = {} at most", count(most.into(), "epoch"), count(total, "epoch"))
    } else {
        format!("{trials} of up to {}, {} in all at most", count(most.into(), "epoch"), count(total, "epoch"))
    };
    if let Some(EarlyStopping { asha }) = request.early_stopping {
        line.push_str(&match asha.rungs(most).as_slice() {
            [] => format!("; ASHA has no rung below {}, so every trial trains to its end", count(most.into(), "epoch")),
            rungs => format!("; ASHA trains fewer, judging trials after epoch {}", list(rungs)),
        });
    }
    Some(line)
}

/// `"1 trial"`, `"12 trials"`.
pub fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// `"1"`, `"1 and 3"`, `"1, 3 and 9"`.
fn list(numbers: &[u32]) -> String {
    let written: Vec<String> = numbers.iter().map(u32::to_string).collect();
    match written.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(epochs: u32) -> TrainConfig {
        TrainConfig { dataset: "colors".into(), epochs, ..TrainConfig::default() }
    }

    fn field(name: &str) -> &'static Field {
        shared::fields::field(name).unwrap()
    }

    #[test]
    fn values_are_read_between_commas_or_spaces_and_each_bad_one_is_named() {
        let read = |name, whole, text| parse_values(name, whole, text);
        assert_eq!(read("lr", false, "0.1, 0.01 ,0.001"), (vec![json!(0.1), json!(0.01), json!(0.001)], vec![]));
        assert_eq!(read("lr", false, "1e-3 3e-3,"), (vec![json!(0.001), json!(0.003)], vec![]));
        assert_eq!(read("batch_size", true, "16 32"), (vec![json!(16), json!(32)], vec![]));
        assert_eq!(read("lr", false, " , "), (vec![], vec![]), "an empty list is the shared rules' to name");
        assert_eq!(read("lr", false, "0.1, fast"), (vec![json!(0.1)], vec!["lr: \"fast\" is not a number".into()]));
        assert_eq!(read("epochs", true, "2.5").1, ["epochs: \"2.5\" is not a whole number"]);
        assert_eq!(read("lr", false, "inf").1.len(), 1);
    }

    #[test]
    fn the_menu_offers_the_common_settings_first_and_never_the_dataset_or_weights() {
        let names: Vec<&str> = sweepable().iter().map(|f| f.name).collect();
        assert_eq!(names[..FIRST_OFFERED.len()], FIRST_OFFERED);
        assert!(!names.contains(&"dataset") && !names.contains(&"weights"));
        assert!(names.contains(&"seed") && names.contains(&"nesterov"));
    }

    #[test]
    fn a_setting_starts_from_its_base_value() {
        let config = base(2);
        assert_eq!(ParameterDraft::new(field("lr"), &config).space, SpaceDraft::Values(config.lr.to_string()));
        assert_eq!(ParameterDraft::new(field("optimizer"), &config).space, SpaceDraft::Ticked(vec!["sgd".into()]));
        assert_eq!(ParameterDraft::new(field("nesterov"), &config).space, SpaceDraft::Ticked(vec!["false".into()]));
        let lr = ParameterDraft::new(field("lr"), &config);
        assert_eq!(lr.default_distribution(&config), Distribution::LogUniform);
        let batch = ParameterDraft::new(field("batch_size"), &config);
        assert_eq!(batch.default_distribution(&config), Distribution::IntUniform);
        assert_eq!(ParameterDraft::new(field("optimizer"), &config).options().len(), 2);
    }

    #[test]
    fn two_learning_rates_make_a_grid_of_two_trials_without_problems() {
        let mut draft = SweepDraft::new(base(1));
        draft.vary(field("lr"));
        draft.parameter_mut("lr").unwrap().space = SpaceDraft::Values("0.01, 0.001".into());
        let (request, unreadable) = draft.request();
        assert!(unreadable.is_empty());
        assert_eq!(request.trial_count(), Some(2));
        assert_eq!(request.trials, None, "a grid has one trial per combination");
        assert_eq!(draft.problems(1), Vec::<String>::new());
        assert_eq!(cost(&request).as_deref(), Some("2 trials × 1 epoch = 2 epochs at most"));
    }

    #[test]
    fn every_problem_shows_before_start_with_the_servers_sentences() {
        let mut draft = SweepDraft::new(base(1));
        assert_eq!(draft.problems(1), ["a sweep varies at least one setting: parameters is empty"]);
        draft.vary(field("lr"));
        draft.parameter_mut("lr").unwrap().space = SpaceDraft::Values(String::new());
        assert_eq!(draft.problems(1), ["lr: values is empty; list at least one"]);
        draft.parameter_mut("lr").unwrap().space = SpaceDraft::Values("0.1, x".into());
        draft.parallel = "2".into();
        assert_eq!(
            draft.problems(1),
            ["lr: \"x\" is not a number", "parallel is 2 but the studio trains at most 1 run at once (its slots)"]
        );
    }

    #[test]
    fn a_random_sweep_draws_its_trials_from_ranges_and_choices() {
        let mut draft = SweepDraft::new(base(4));
        draft.method = SweepMethod::Random;
        draft.trials = "12".into();
        draft.vary(field("lr"));
        draft.parameter_mut("lr").unwrap().space =
            SpaceDraft::Range { min: "1e-4".into(), max: "0.1".into(), distribution: Distribution::LogUniform };
        draft.vary(field("optimizer"));
        draft.parameter_mut("optimizer").unwrap().space = SpaceDraft::Ticked(vec!["sgd".into(), "adamw".into()]);
        draft.asha = Some(AshaVariant::Stopping);
        let (request, unreadable) = draft.request();
        assert!(unreadable.is_empty() && draft.problems(1).is_empty(), "{:?}", draft.problems(1));
        assert_eq!(request.trial_count(), Some(12));
        assert_eq!(request.parameters["optimizer"].values, Some(vec![json!("sgd"), json!("adamw")]));
        assert_eq!(
            cost(&request).as_deref(),
            Some("12 trials × 4 epochs = 48 epochs at most; ASHA trains fewer, judging trials after epoch 1 and 3")
        );
        draft.keep("lr");
        assert_eq!(draft.parameters.len(), 1);
        draft.asha = Some(AshaVariant::Promotion);
        let early = draft.request().0.early_stopping.expect("ASHA chosen");
        assert_eq!((early.asha.variant, early.asha.grace_epochs, early.asha.eta), (AshaVariant::Promotion, 1, 3));
    }

    #[test]
    fn a_list_turns_into_the_range_it_spans_and_back() {
        let config = base(1);
        let mut lr = ParameterDraft::new(field("lr"), &config);
        lr.space = SpaceDraft::Values("0.01, 0.0001, 0.001".into());
        lr.to_range(&config);
        let range =
            SpaceDraft::Range { min: "0.0001".into(), max: "0.01".into(), distribution: Distribution::LogUniform };
        assert_eq!(lr.space, range);
        lr.to_values();
        assert_eq!(lr.space, SpaceDraft::Values("0.0001, 0.01".into()));
    }

    #[test]
    fn a_range_needs_numbers_at_both_ends() {
        let mut draft = SweepDraft::new(base(1));
        draft.method = SweepMethod::Random;
        draft.vary(field("momentum"));
        draft.parameter_mut("momentum").unwrap().space =
            SpaceDraft::Range { min: "".into(), max: "0.9".into(), distribution: Distribution::Uniform };
        assert_eq!(draft.problems(1), ["momentum: min and max must be numbers"]);
    }

    #[test]
    fn trials_of_different_lengths_are_summed_and_asha_without_rungs_says_so() {
        let mut draft = SweepDraft::new(base(1));
        draft.vary(field("epochs"));
        draft.parameter_mut("epochs").unwrap().space = SpaceDraft::Values("1, 3".into());
        draft.asha = Some(AshaVariant::Stopping);
        draft.grace_epochs = "5".into();
        let (request, _) = draft.request();
        assert_eq!(
            cost(&request).as_deref(),
            Some(
                "2 trials of up to 3 epochs, 4 epochs in all at most; ASHA has no rung below 3 epochs, so every \
                 trial trains to its end"
            )
        );
        assert_eq!(count(1, "trial"), "1 trial");
        assert_eq!(list(&[1, 3, 9]), "1, 3 and 9");
    }
}
