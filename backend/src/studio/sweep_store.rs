//! The sweeps' part of the run history: each sweep's request and status, its planned trials (with the
//! run each became) and the early-stopping decisions made, in the same SQLite file as the runs, so a
//! sweep survives a crash as its runs do.

use super::store::{Store, StoreError};
use rusqlite::{params, OptionalExtension};
use shared::sweep::{RungDecision, SweepRef, SweepRequest, SweepStatus, TrialParameters};
use shared::Run;

/// A sweep's own row.
#[derive(Debug, Clone)]
pub struct SweepRow {
    /// The sweep.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// What was asked for.
    pub request: SweepRequest,
    /// Where it is.
    pub status: SweepStatus,
    /// Seconds since the Unix epoch when it was created.
    pub created_at: u64,
}

/// One planned trial as the history holds it.
#[derive(Debug, Clone)]
pub struct TrialRow {
    /// Its number, from 1.
    pub trial: u32,
    /// Its parameter values.
    pub parameters: TrialParameters,
    /// Its run, once created.
    pub run_id: Option<u64>,
    /// Times it was retried after a failure.
    pub retries: u32,
    /// Why it ended early.
    pub note: Option<String>,
    /// True once a person stopped its run while the sweep ran: the sweep leaves it until resumed.
    pub held: bool,
}

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt { what, why: e.to_string() }
}

impl Store {
    /// Records a new running sweep with its planned trials; returns its id.
    pub fn create_sweep(
        &self,
        request: &SweepRequest,
        trials: &[TrialParameters],
        created_at: u64,
    ) -> Result<u64, StoreError> {
        self.in_transaction(|store| {
            let json = serde_json::to_string(request).expect("a request serialises");
            store.connection.execute(
                "INSERT INTO sweeps (name, request, status, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![request.name, json, SweepStatus::Running.as_str(), created_at as i64],
            )?;
            let id = store.connection.last_insert_rowid() as u64;
            for (index, parameters) in trials.iter().enumerate() {
                store.connection.execute(
                    "INSERT INTO trials (sweep_id, trial, parameters) VALUES (?1, ?2, ?3)",
                    params![id as i64, index as i64 + 1, serde_json::to_string(parameters).expect("values serialise")],
                )?;
            }
            Ok(id)
        })
    }

    /// One sweep's row, if it exists.
    pub fn sweep_row(&self, id: u64) -> Result<Option<SweepRow>, StoreError> {
        let row = self
            .connection
            .query_row(
                "SELECT id, name, request, status, created_at FROM sweeps WHERE id = ?1",
                params![id as i64],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((id, name, request, status, created_at)) = row else { return Ok(None) };
        let request = serde_json::from_str(&request).map_err(corrupt("sweep request"))?;
        let status = SweepStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt { what: "sweep status", why: status.clone() })?;
        Ok(Some(SweepRow { id: id as u64, name, request, status, created_at: created_at as u64 }))
    }

    /// Every sweep's id, newest first.
    pub fn sweep_ids(&self) -> Result<Vec<u64>, StoreError> {
        let mut statement = self.connection.prepare("SELECT id FROM sweeps ORDER BY id DESC")?;
        let ids = statement.query_map([], |row| row.get::<_, i64>(0))?;
        Ok(ids.map(|id| id.map(|id| id as u64)).collect::<Result<_, _>>()?)
    }

    /// Sets a sweep's status.
    pub fn set_sweep_status(&self, id: u64, status: SweepStatus) -> Result<(), StoreError> {
        self.connection.execute("UPDATE sweeps SET status = ?2 WHERE id = ?1", params![id as i64, status.as_str()])?;
        Ok(())
    }

    /// Deletes a sweep with its trials and decisions; its runs stay, as ordinary runs. False if none.
    pub fn delete_sweep(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.connection.execute("DELETE FROM sweeps WHERE id = ?1", params![id as i64])? == 1)
    }

    /// A sweep's trials, in order.
    pub fn trials(&self, sweep_id: u64) -> Result<Vec<TrialRow>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT trial, parameters, run_id, retries, note, held FROM trials WHERE sweep_id = ?1 ORDER BY trial",
        )?;
        let rows = statement
            .query_map(params![sweep_id as i64], |r| {
                Ok((r.get(0)?, r.get::<_, String>(1)?, r.get::<_, Option<i64>>(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(trial, parameters, run_id, retries, note, held)| {
                Ok(TrialRow {
                    trial,
                    parameters: serde_json::from_str(&parameters).map_err(corrupt("trial parameters"))?,
                    run_id: run_id.map(|id| id as u64),
                    retries,
                    note,
                    held,
                })
            })
            .collect()
    }

    /// A sweep's trials, in order, each with its run in outline ([`Store::run_outline`]) once it has one.
    pub fn trials_with_runs(&self, sweep_id: u64) -> Result<Vec<(TrialRow, Option<Run>)>, StoreError> {
        self.trials(sweep_id)?
            .into_iter()
            .map(|trial| {
                let run = match trial.run_id {
                    Some(run_id) => self.run_outline(run_id)?,
                    None => None,
                };
                Ok((trial, run))
            })
            .collect()
    }

    /// Records the run a trial became.
    pub fn set_trial_run(&self, sweep: SweepRef, run_id: u64) -> Result<(), StoreError> {
        self.connection.execute(
            "UPDATE trials SET run_id = ?3 WHERE sweep_id = ?1 AND trial = ?2",
            params![sweep.id as i64, sweep.trial, run_id as i64],
        )?;
        Ok(())
    }

    /// Counts a retry of a trial and notes why.
    pub fn note_trial(&self, sweep: SweepRef, retried: bool, note: &str) -> Result<(), StoreError> {
        self.connection.execute(
            "UPDATE trials SET retries = retries + ?3, note = ?4 WHERE sweep_id = ?1 AND trial = ?2",
            params![sweep.id as i64, sweep.trial, i64::from(retried), note],
        )?;
        Ok(())
    }

    /// Holds a trial (a person stopped its run) or, with `held` false, lets every trial of the sweep go on.
    pub fn hold_trials(&self, sweep_id: u64, trial: Option<u32>, held: bool) -> Result<(), StoreError> {
        self.connection.execute(
            "UPDATE trials SET held = ?3 WHERE sweep_id = ?1 AND (?2 IS NULL OR trial = ?2)",
            params![sweep_id as i64, trial, held],
        )?;
        Ok(())
    }

    /// The trial run `run_id` is, if it is one.
    pub fn trial_of_run(&self, run_id: u64) -> Result<Option<SweepRef>, StoreError> {
        Ok(self
            .connection
            .query_row("SELECT sweep_id, trial FROM trials WHERE run_id = ?1", params![run_id as i64], |r| {
                Ok(SweepRef { id: r.get::<_, i64>(0)? as u64, trial: r.get(1)? })
            })
            .optional()?)
    }

    /// Records an early-stopping decision (once per trial and rung: a second is ignored).
    pub fn add_decision(&self, sweep_id: u64, decision: &RungDecision) -> Result<(), StoreError> {
        self.connection.execute(
            "INSERT OR IGNORE INTO rung_decisions (sweep_id, trial, epoch, decision) VALUES (?1, ?2, ?3, ?4)",
            params![
                sweep_id as i64,
                decision.trial,
                decision.epoch,
                serde_json::to_string(decision).expect("a decision serialises")
            ],
        )?;
        Ok(())
    }

    /// A sweep's decisions, in the order made.
    pub fn decisions(&self, sweep_id: u64) -> Result<Vec<RungDecision>, StoreError> {
        let mut statement =
            self.connection.prepare_cached("SELECT decision FROM rung_decisions WHERE sweep_id = ?1 ORDER BY rowid")?;
        let rows = statement.query_map(params![sweep_id as i64], |r| r.get::<_, String>(0))?;
        rows.map(|row| serde_json::from_str(&row?).map_err(corrupt("early-stopping decision"))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::sweep::ParameterSpace;
    use shared::TrainConfig;

    #[test]
    fn a_sweep_its_trials_runs_and_decisions_survive_reopening_and_deleting_it_keeps_the_runs() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("studio.db");
        let request = SweepRequest {
            name: "lr".into(),
            base: TrainConfig { dataset: "d".into(), ..TrainConfig::default() },
            parameters: [("lr".to_string(), ParameterSpace::values(vec![0.1.into(), 0.01.into()]))].into(),
            method: Default::default(),
            trials: None,
            parallel: 1,
            seed: 0,
            metric: Default::default(),
            early_stopping: None,
        };
        let plan = request.plan().unwrap();
        let (id, run_id) = {
            let store = Store::open(&path).unwrap();
            let id = store.create_sweep(&request, &plan, 7).unwrap();
            let run = store.create_run(&request.trial_config(&plan[1]).unwrap(), 8).unwrap();
            store.set_trial_run(SweepRef { id, trial: 2 }, run.id).unwrap();
            store.note_trial(SweepRef { id, trial: 2 }, true, "retried").unwrap();
            let decision = RungDecision {
                trial: 2,
                epoch: 1,
                metric: 0.5,
                reached: 1,
                cut: 0.5,
                continued: true,
                sentence: "went on".into(),
            };
            store.add_decision(id, &decision).unwrap();
            store.add_decision(id, &RungDecision { continued: false, ..decision }).unwrap();
            (id, run.id)
        };
        let store = Store::open(&path).unwrap();
        let row = store.sweep_row(id).unwrap().unwrap();
        assert_eq!((row.name.as_str(), row.status, row.created_at), ("lr", SweepStatus::Running, 7));
        let trials = store.trials(id).unwrap();
        assert_eq!(trials.len(), 2);
        assert_eq!(
            (trials[1].run_id, trials[1].retries, trials[1].note.as_deref()),
            (Some(run_id), 1, Some("retried"))
        );
        store.hold_trials(id, Some(2), true).unwrap();
        assert_eq!(store.trials(id).unwrap().iter().map(|t| t.held).collect::<Vec<_>>(), [false, true]);
        store.hold_trials(id, None, false).unwrap();
        assert!(store.trials(id).unwrap().iter().all(|t| !t.held));
        assert_eq!(store.trial_of_run(run_id).unwrap(), Some(SweepRef { id, trial: 2 }));
        assert_eq!(store.run(run_id).unwrap().unwrap().sweep, Some(SweepRef { id, trial: 2 }));
        let decisions = store.decisions(id).unwrap();
        assert_eq!(decisions.len(), 1, "one decision per trial and rung");
        assert!(decisions[0].continued, "the first decision stands");
        assert!(store.delete_sweep(id).unwrap());
        assert!(store.sweep_row(id).unwrap().is_none());
        assert_eq!(store.run(run_id).unwrap().unwrap().sweep, None, "the run stays, as an ordinary run");
        assert!(store.decisions(id).unwrap().is_empty());
    }
}
