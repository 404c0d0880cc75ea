//! ASHA's decisions at a rung (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys
//! 2020), in both variants of [`shared::sweep::AshaVariant`]:
//! - stopping ([`judge`], Ray Tune's `ASHAScheduler`): a trial that has just finished a rung's epoch goes
//!   on only if its metric is in the top `1/eta` of every trial that has reached that rung so far, itself
//!   included; at least one always goes on, so the first to arrive always does;
//! - promotion ([`promotions`], the paper's Algorithm 2): a trial waits at the rung and goes on once it
//!   is in the top `floor(n/eta)` of the `n` trials that reached it; when nothing else is left to train,
//!   the best waiting trial of a rung no trial went on from goes on, and the rest are pruned; a waiting
//!   trial a person resumes by hand goes on, recorded as such ([`by_hand`]).
//!
//! Both depend only on the values and their order of arrival, so a sweep replayed in the same order
//! decides the same.

use shared::sweep::{RungDecision, SweepMetric};

/// Judges trial `trial` at rung `epoch`, where its metric is `value` and the trials that reached the
/// rung before it had `earlier`.
pub fn judge(metric: SweepMetric, eta: u32, trial: u32, epoch: u32, value: f64, earlier: &[f64]) -> RungDecision {
    let eta = eta.max(2);
    let reached = earlier.len() + 1;
    let keep = (reached / eta as usize).max(1);
    let mut ranked: Vec<f64> = earlier.iter().copied().chain([value]).collect();
    // Best first; a value that is not a number ranks last.
    ranked.sort_by(|a, b| rank(metric, *a, *b));
    let cut = ranked[keep - 1];
    // Ties go the way of the trial judged: only trials strictly better push it down.
    let ahead = earlier.iter().filter(|&&other| rank(metric, other, value).is_lt()).count();
    let continued = ahead < keep;
    let sentence = sentence(metric, eta, epoch, value, reached, cut, continued);
    RungDecision { trial, epoch, metric: value, reached: reached as u32, cut, continued, sentence }
}

/// A trial that reached a rung, as the promotion variant sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtRung {
    /// The trial's number.
    pub trial: u32,
    /// Its metric after the rung's epoch.
    pub value: f64,
    /// It waits there: it neither went on nor was pruned yet.
    pub waiting: bool,
}

/// The promotion variant at rung `epoch`, reached by `reached`: a decision for each waiting trial that
/// goes on now, being in the top `floor(n/eta)`. With `at_end` (nothing else is left to train, so no
/// trial will reach the rung any more) every waiting trial is decided, and the top `max(1, floor(n/eta))`
/// go on, so that one trial at least goes on from each rung. Ties rank by trial number.
pub fn promotions(metric: SweepMetric, eta: u32, epoch: u32, reached: &[AtRung], at_end: bool) -> Vec<RungDecision> {
    let eta = eta.max(2);
    let mut ranked = reached.to_vec();
    ranked.sort_by(|a, b| rank(metric, a.value, b.value).then(a.trial.cmp(&b.trial)));
    let top = ranked.len() / eta as usize;
    let keep = if at_end { top.max(1) } else { top };
    let Some(cut) = ranked.get(keep.max(1) - 1).map(|at| at.value) else { return Vec::new() };
    let n = ranked.len();
    ranked
        .iter()
        .enumerate()
        .filter(|(rank, at)| at.waiting && (at_end || *rank < keep))
        .map(|(rank, at)| {
            let continued = rank < keep;
            let sentence = if continued && rank >= top {
                format!(
                    "went on after epoch {epoch}: {}, the best of the {n} trials that reached epoch {epoch} (one at \
                     least goes on from each rung)",
                    metric.show(at.value)
                )
            } else {
                sentence(metric, eta, epoch, at.value, n, cut, continued)
            };
            RungDecision { trial: at.trial, epoch, metric: at.value, reached: n as u32, cut, continued, sentence }
        })
        .collect()
}

/// The promotion variant at rung `epoch` when a person resumed waiting trial `trial` by hand, before ASHA
/// promoted or pruned it: it is recorded as gone on by hand, with where it stood among the trials in
/// `reached` (itself included) and the cut of the top `max(1, floor(n/eta))`. `None` if it is not there.
pub fn by_hand(metric: SweepMetric, eta: u32, trial: u32, epoch: u32, reached: &[AtRung]) -> Option<RungDecision> {
    let value = reached.iter().find(|at| at.trial == trial)?.value;
    let mut ranked: Vec<f64> = reached.iter().map(|at| at.value).collect();
    ranked.sort_by(|a, b| rank(metric, *a, *b));
    let keep = (ranked.len() / eta.max(2) as usize).max(1);
    let cut = ranked[keep - 1];
    let place = 1 + reached.iter().filter(|other| rank(metric, other.value, value).is_lt()).count();
    let n = reached.len();
    let sentence = format!(
        "went on by hand after epoch {epoch}: {}, placed {place} of the {n} trials that reached epoch {epoch}, \
         was resumed before ASHA decided (the cut was {})",
        metric.show(value),
        metric.show(cut)
    );
    Some(RungDecision { trial, epoch, metric: value, reached: n as u32, cut, continued: true, sentence })
}

/// `a` before `b` when it is the better value of `metric`; a value that is not a number ranks last.
pub fn rank(metric: SweepMetric, a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) if metric.better(a, b) => std::cmp::Ordering::Less,
        (false, false) if metric.better(b, a) => std::cmp::Ordering::Greater,
        _ => std::cmp::Ordering::Equal,
    }
}

fn sentence(metric: SweepMetric, eta: u32, epoch: u32, value: f64, reached: usize, cut: f64, went_on: bool) -> String {
    let shown = metric.show(value);
    if reached == 1 {
        return format!("went on after epoch {epoch}: {shown}, the first trial to reach epoch {epoch}, always goes on");
    }
    let (verb, was) = if went_on { ("went on", "was") } else { ("stopped", "was not") };
    format!(
        "{verb} after epoch {epoch}: {shown} {was} in the {} of the {reached} trials that reached epoch {epoch} \
         (the cut was {})",
        top_fraction(eta),
        metric.show(cut)
    )
}

/// "top half", "top third", "top quarter", else "top 1/eta".
fn top_fraction(eta: u32) -> String {
    match eta {
        2 => "top half".to_string(),
        3 => "top third".to_string(),
        4 => "top quarter".to_string(),
        eta => format!("top 1/{eta}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::sweep::{Asha, AshaVariant};

    const ACCURACY: SweepMetric = SweepMetric::TestAccuracy;

    #[test]
    fn the_first_to_reach_a_rung_always_goes_on() {
        let decision = judge(ACCURACY, 3, 1, 1, 0.1, &[]);
        assert!(decision.continued);
        assert_eq!(decision.reached, 1);
        assert!(decision.sentence.contains("the first trial to reach epoch 1"), "{}", decision.sentence);
    }

    #[test]
    fn a_trial_goes_on_only_in_the_top_third_of_those_that_reached_the_rung() {
        let earlier = [0.70, 0.63, 0.50, 0.45, 0.30];
        let behind = judge(ACCURACY, 3, 6, 3, 0.412, &earlier);
        assert!(!behind.continued);
        assert_eq!((behind.reached, behind.cut), (6, 0.63));
        assert_eq!(
            behind.sentence,
            "stopped after epoch 3: 41.2 % was not in the top third of the 6 trials that reached epoch 3 (the cut \
             was 63.0 %)"
        );
        assert!(judge(ACCURACY, 3, 6, 3, 0.65, &earlier).continued, "second of six is in the top two");
        assert!(!judge(ACCURACY, 3, 6, 3, 0.62, &earlier).continued, "third of six is not");
        assert!(judge(ACCURACY, 3, 6, 3, 0.63, &earlier).continued, "a tie with the cut goes on");
    }

    #[test]
    fn for_a_loss_lower_is_better_and_a_value_that_is_no_number_ranks_last() {
        let earlier = [0.9, 1.2, 2.0];
        assert!(judge(SweepMetric::TestLoss, 2, 4, 1, 0.5, &earlier).continued);
        assert!(!judge(SweepMetric::TestLoss, 2, 4, 1, 1.5, &earlier).continued);
        assert!(!judge(SweepMetric::TestLoss, 2, 4, 1, f64::NAN, &earlier).continued);
        assert!(!judge(ACCURACY, 2, 4, 1, f64::NAN, &[0.1, 0.2, 0.3]).continued);
    }

    fn at(trial: u32, value: f64, waiting: bool) -> AtRung {
        AtRung { trial, value, waiting }
    }

    #[test]
    fn a_waiting_trial_is_promoted_once_it_is_in_the_top_floor_n_over_eta() {
        // Two trials reached the rung: floor(2/3) = 0, nobody goes on yet, however good.
        assert!(promotions(ACCURACY, 3, 1, &[at(1, 0.9, true), at(2, 0.2, true)], false).is_empty());
        // A third arrives: the best of the three goes on, the others wait.
        let three = [at(1, 0.5, true), at(2, 0.2, true), at(3, 0.7, true)];
        let promoted = promotions(ACCURACY, 3, 1, &three, false);
        assert_eq!(promoted.len(), 1);
        let decision = &promoted[0];
        assert_eq!((decision.trial, decision.continued, decision.reached, decision.cut), (3, true, 3, 0.7));
        assert_eq!(
            decision.sentence,
            "went on after epoch 1: 70.0 % was in the top third of the 3 trials that reached epoch 1 (the cut was \
             70.0 %)"
        );
        // One that went on already holds its place in the top: six reached, the top two are trials 3 and 6.
        let six = [
            at(1, 0.5, true),
            at(2, 0.2, true),
            at(3, 0.7, false),
            at(4, 0.1, true),
            at(5, 0.3, true),
            at(6, 0.6, true),
        ];
        let promoted: Vec<u32> = promotions(ACCURACY, 3, 1, &six, false).iter().map(|d| d.trial).collect();
        assert_eq!(promoted, [6]);
    }

    #[test]
    fn at_the_end_the_best_waiting_trial_of_a_rung_goes_on_and_the_rest_are_pruned() {
        let two = [at(4, 0.61, true), at(7, 0.60, true)];
        let decisions = promotions(ACCURACY, 3, 3, &two, true);
        let outcome: Vec<(u32, bool)> = decisions.iter().map(|d| (d.trial, d.continued)).collect();
        assert_eq!(outcome, [(4, true), (7, false)]);
        assert_eq!(
            decisions[0].sentence,
            "went on after epoch 3: 61.0 %, the best of the 2 trials that reached epoch 3 (one at least goes on \
             from each rung)"
        );
        assert_eq!(
            decisions[1].sentence,
            "stopped after epoch 3: 60.0 % was not in the top third of the 2 trials that reached epoch 3 (the cut \
             was 61.0 %)"
        );
        // Six reached and two went on already: at the end the waiting ones are pruned, none promoted.
        let six = [at(1, 0.5, true), at(2, 0.2, true), at(3, 0.7, false), at(6, 0.6, false), at(5, 0.3, true)];
        let six: Vec<AtRung> = six.into_iter().chain([at(4, 0.1, true)]).collect();
        assert!(promotions(ACCURACY, 3, 1, &six, true).iter().all(|d| !d.continued));
        // Ties rank by trial number; a value that is not a number ranks last.
        let tied = [at(2, 0.5, true), at(1, 0.5, true), at(3, f64::NAN, true)];
        let first = promotions(ACCURACY, 3, 1, &tied, false);
        assert_eq!(first.iter().map(|d| d.trial).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_waiting_trial_resumed_by_hand_goes_on_with_where_it_stood() {
        let reached = [at(1, 0.5, true), at(2, 0.2, true), at(3, 0.7, false), at(4, 0.6, true)];
        let decision = by_hand(ACCURACY, 3, 2, 3, &reached).expect("trial 2 reached the rung");
        assert_eq!((decision.trial, decision.epoch, decision.continued, decision.reached), (2, 3, true, 4));
        assert_eq!((decision.metric, decision.cut), (0.2, 0.7));
        assert_eq!(
            decision.sentence,
            "went on by hand after epoch 3: 20.0 %, placed 4 of the 4 trials that reached epoch 3, was resumed \
             before ASHA decided (the cut was 70.0 %)"
        );
        assert!(by_hand(ACCURACY, 3, 9, 3, &reached).is_none(), "trial 9 did not reach the rung");
    }

    /// Synthetic learning curves that keep their order (the assumption ASHA rests on; a late bloomer can
    /// be pruned, as in the paper), arriving one trial at a time as with one slot: the best trial is kept
    /// to the end, the worst are cut at the first rung, and the epochs trained shrink as the paper's do.
    #[test]
    fn on_synthetic_curves_the_best_trial_survives_every_rung_and_most_are_pruned_early() {
        let asha = Asha { grace_epochs: 1, eta: 3, variant: AshaVariant::Stopping };
        let epochs = 9;
        // Trial t's accuracy after epoch e approaches its ceiling.
        let ceilings = [0.55, 0.80, 0.40, 0.72, 0.90, 0.35, 0.60, 0.85, 0.50];
        let curve = |t: usize, e: u32| ceilings[t] * (1.0 - (-(f64::from(e)) / 3.0).exp());
        let mut at_rung: std::collections::BTreeMap<u32, Vec<f64>> = Default::default();
        let mut trained = 0;
        let mut finished = Vec::new();
        for t in 0..ceilings.len() {
            let mut survived = true;
            for rung in asha.rungs(epochs) {
                let value = curve(t, rung);
                let earlier = at_rung.entry(rung).or_default();
                let decision = judge(ACCURACY, asha.eta, t as u32 + 1, rung, value, earlier);
                earlier.push(value);
                if !decision.continued {
                    trained += rung;
                    survived = false;
                    break;
                }
            }
            if survived {
                trained += epochs;
                finished.push(t);
            }
        }
        assert!(finished.contains(&4), "the best trial (ceiling 0.90) trains to the end: {finished:?}");
        println!("ASHA trained {trained} of the grid's 81 epochs; finished: {finished:?}");
        assert!(trained <= 9 * 9 / 2, "ASHA trained {trained} of the grid's 81 epochs");
        assert!(!finished.contains(&5) && !finished.contains(&2), "the two worst are pruned: {finished:?}");
    }
}
