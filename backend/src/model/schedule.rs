//! Learning-rate schedules, evaluated per optimisation step so warm-up and decay are smooth.

use shared::{Schedule, TrainConfig};
use std::f64::consts::PI;

/// The learning rate for each step of a run.
#[derive(Debug, Clone)]
pub struct LrSchedule {
    schedule: Schedule,
    base_lr: f64,
    steps_per_epoch: u64,
    total_steps: u64,
    warmup_steps: u64,
    step_size: u32,
    gamma: f64,
}

impl LrSchedule {
    /// The schedule `config` asks for, with `steps_per_epoch` optimisation steps in each epoch.
    pub fn new(config: &TrainConfig, steps_per_epoch: u64) -> Self {
        LrSchedule {
            schedule: config.schedule,
            base_lr: config.lr,
            steps_per_epoch,
            total_steps: steps_per_epoch * u64::from(config.epochs),
            warmup_steps: steps_per_epoch * u64::from(config.warmup_epochs),
            step_size: config.step_size,
            gamma: config.gamma,
        }
    }

    /// Learning rate of step `step` (0-based, counted over the whole run).
    pub fn lr_at(&self, step: u64) -> f64 {
        let lr = self.base_lr;
        if self.schedule == Schedule::OneCycle {
            // As torch.optim.lr_scheduler.OneCycleLR with its defaults (pct_start 0.3, cosine annealing).
            let (initial, minimum) = (lr / 25.0, lr / 25.0 / 1e4);
            let peak_step = (0.3 * self.total_steps as f64).max(1.0);
            let t = step as f64;
            return if t <= peak_step {
                cosine_between(initial, lr, t / peak_step)
            } else {
                let rest = (self.total_steps as f64 - peak_step).max(1.0);
                cosine_between(lr, minimum, ((t - peak_step) / rest).min(1.0))
            };
        }
        if step < self.warmup_steps {
            return lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Constant | Schedule::OneCycle => lr,
            Schedule::Step => {
                let epoch = step / self.steps_per_epoch.max(1);
                lr * self.gamma.powi((epoch / u64::from(self.step_size)) as i32)
            }
            Schedule::Cosine => {
                let span = (self.total_steps - self.warmup_steps).max(1) as f64;
                let t = (step - self.warmup_steps) as f64 / span;
                cosine_between(lr, 0.0, t.min(1.0))
            }
        }
    }
}

/// Cosine interpolation from `start` (t = 0) to `end` (t = 1).
fn cosine_between(start: f64, end: f64, t: f64) -> f64 {
    end + (start - end) * 0.5 * (1.0 + (PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(schedule: Schedule, warmup_epochs: u32) -> LrSchedule {
        let config = TrainConfig {
            schedule,
            warmup_epochs,
            epochs: 10,
            lr: 0.1,
            step_size: 3,
            gamma: 0.5,
            ..TrainConfig::for_dataset("d")
        };
        LrSchedule::new(&config, 10)
    }

    #[test]
    fn constant_stays_and_warm_up_rises_linearly() {
        assert_eq!(schedule(Schedule::Constant, 0).lr_at(57), 0.1);
        let warm = schedule(Schedule::Constant, 2);
        assert!((warm.lr_at(0) - 0.005).abs() < 1e-12);
        assert!((warm.lr_at(9) - 0.05).abs() < 1e-12);
        assert_eq!(warm.lr_at(20), 0.1);
    }

    #[test]
    fn step_drops_by_gamma_every_step_size_epochs() {
        let step = schedule(Schedule::Step, 0);
        assert_eq!(step.lr_at(29), 0.1);
        assert_eq!(step.lr_at(30), 0.05);
        assert_eq!(step.lr_at(60), 0.025);
    }

    #[test]
    fn cosine_decays_to_zero_after_warm_up() {
        let cosine = schedule(Schedule::Cosine, 1);
        assert!((cosine.lr_at(10) - 0.1).abs() < 1e-12);
        assert!((cosine.lr_at(55) - 0.05).abs() < 1e-12);
        assert!(cosine.lr_at(99) < 1e-4);
    }

    #[test]
    fn one_cycle_rises_to_the_peak_then_anneals() {
        let cycle = schedule(Schedule::OneCycle, 0);
        assert!((cycle.lr_at(0) - 0.004).abs() < 1e-12);
        assert!((cycle.lr_at(30) - 0.1).abs() < 1e-12);
        assert!(cycle.lr_at(99) < 1e-4);
        assert!((cycle.lr_at(100) - 0.004 / 1e4).abs() < 1e-12, "ends at the initial rate / 10⁴");
    }
}
