//! Run history in an SQLite file under the data directory: every run, its full config, every epoch's
//! metrics and its best checkpoint, and the datasets the studio added, written as they happen so that
//! they survive a crash or a restart. The checkpoint and dataset *files* stay files in the data folder;
//! the database records what they are and when they came.
//!
//! rusqlite (with SQLite bundled) rather than files of JSON: transactions make each update atomic, and
//! the schema evolves through numbered migrations recorded in `PRAGMA user_version`.

use crate::fault;
use rusqlite::{params, Connection, OptionalExtension};
use shared::{Checkpoint, DatasetAdded, DatasetOrigin, EpochMetrics, Placement, Run, RunStatus, TrainConfig};
use std::path::Path;

/// Schema steps, applied in order; `user_version` counts how many have run.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        config TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        classes TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        has_model INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE epochs (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        train_loss REAL NOT NULL,
        train_accuracy REAL NOT NULL,
        test_loss REAL NOT NULL,
        test_accuracy REAL NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (run_id, epoch)
    );",
    "ALTER TABLE epochs ADD COLUMN test_top5_accuracy REAL;
    ALTER TABLE epochs ADD COLUMN lr REAL NOT NULL DEFAULT 0;
    ALTER TABLE epochs ADD COLUMN per_class_accuracy TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE epochs ADD COLUMN confusion TEXT NOT NULL DEFAULT '[]';",
    "CREATE TABLE checkpoints (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        saved_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, kind)
    );
    CREATE TABLE datasets (
        name TEXT PRIMARY KEY,
        origin TEXT NOT NULL,
        added_at INTEGER NOT NULL
    );",
    "ALTER TABLE runs ADD COLUMN name TEXT;
    ALTER TABLE runs ADD COLUMN device TEXT;",
    "ALTER TABLE runs ADD COLUMN placement TEXT;",
    "CREATE TABLE sweeps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        request TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE trials (
        sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        trial INTEGER NOT NULL,
        parameters TEXT NOT NULL,
        run_id INTEGER UNIQUE,
        retries INTEGER NOT NULL DEFAULT 0,
        note TEXT,
        held INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sweep_id, trial)
    );
    CREATE TABLE rung_decisions (
        sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        trial INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        decision TEXT NOT NULL,
        PRIMARY KEY (sweep_id, trial, epoch)
    );",
];

/// The `runs` columns [`RunRow::from_row`] reads, in its order.
const RUN_COLUMNS: &str = "id, config, status, error, classes, created_at, has_model, name, device, placement, \
     (SELECT json_object('id', sweep_id, 'trial', trial) FROM trials WHERE trials.run_id = runs.id)";

/// Why the history could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or brought up to date; the sentence names the file.
    #[error("could not open the run history {}: {source}", path.display())]
    Open {
        /// The database file.
        path: std::path::PathBuf,
        /// Why.
        source: Box<StoreError>,
    },
    /// SQLite reported an error.
    #[error("run history database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be decoded.
    #[error("run history database holds a malformed {what}: {why}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// The error SQLite gives when the disk holding its database is full.
fn disk_full() -> rusqlite::Error {
    let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL);
    rusqlite::Error::SqliteFailure(code, Some("database or disk is full".to_string()))
}

/// Whether a run is read with its epochs' per-class accuracies and confusion matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matrices {
    Read,
    Skip,
}

/// The run history.
pub struct Store {
    pub(super) connection: Connection,
}

impl Store {
    /// Opens (or creates) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let opened = || -> Result<Self, StoreError> {
            let connection = Connection::open(path)?;
            connection.pragma_update(None, "journal_mode", "WAL")?;
            connection.pragma_update(None, "foreign_keys", "ON")?;
            connection.busy_timeout(std::time::Duration::from_secs(5))?;
            let mut store = Store { connection };
            store.migrate()?;
            Ok(store)
        };
        opened().map_err(|source| StoreError::Open { path: path.to_path_buf(), source: Box::new(source) })
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: usize = self.connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
        for (index, step) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.connection.transaction()?;
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", index + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Records a new queued run and returns it.
    pub fn create_run(&self, config: &TrainConfig, created_at: u64) -> Result<Run, StoreError> {
        let json = serde_json::to_string(config).expect("config serialises");
        self.connection.execute(
            "INSERT INTO runs (config, status, created_at) VALUES (?1, ?2, ?3)",
            params![json, RunStatus::Queued.as_str(), created_at as i64],
        )?;
        let id = self.connection.last_insert_rowid() as u64;
        Ok(self.run(id)?.expect("the run just inserted exists"))
    }

    /// Runs `work` as one transaction: every write in it lands, or none does. Inside another
    /// transaction it simply joins that one.
    pub fn in_transaction<T>(&self, work: impl FnOnce(&Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if !self.connection.is_autocommit() {
            return work(self);
        }
        let transaction = self.connection.unchecked_transaction()?;
        let value = work(self)?;
        transaction.commit()?;
        Ok(value)
    }

    /// Sets a run's status and error message if its status is one of `from`, in one statement, so two
    /// requests racing to change it cannot both succeed. True if it changed.
    pub fn change_status(
        &self,
        id: u64,
        from: &[RunStatus],
        to: RunStatus,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let from: Vec<&str> = from.iter().map(|status| status.as_str()).collect();
        // A queued run is placed nowhere until an executor places it again.
        let changed = self.connection.execute(
            "UPDATE runs SET status = ?2, error = ?3, placement = CASE WHEN ?2 = 'queued' THEN NULL ELSE placement END \
             WHERE id = ?1 AND status IN (SELECT value FROM json_each(?4))",
            params![id as i64, to.as_str(), error, serde_json::to_string(&from).expect("strings serialise")],
        )?;
        Ok(changed == 1)
    }

    /// Applies `event` to run `id` (see [`super::lifecycle`]) with `error` as its sentence, in one
    /// statement; false when the run's status does not allow it (another move won, or it is gone).
    pub fn apply(&self, id: u64, event: super::lifecycle::Move, error: Option<&str>) -> Result<bool, StoreError> {
        let rule = event.rule();
        self.change_status(id, rule.from, rule.to, error)
    }

    /// Sets a run's status and error message.
    pub fn set_status(&self, id: u64, status: RunStatus, error: Option<&str>) -> Result<(), StoreError> {
        self.connection.execute(
            "UPDATE runs SET status = ?2, error = ?3 WHERE id = ?1",
            params![id as i64, status.as_str(), error],
        )?;
        Ok(())
    }

    /// Records the class names a run trains on.
    pub fn set_classes(&self, id: u64, classes: &[String]) -> Result<(), StoreError> {
        let json = serde_json::to_string(classes).expect("strings serialise");
        self.connection.execute("UPDATE runs SET classes = ?2 WHERE id = ?1", params![id as i64, json])?;
        Ok(())
    }

    /// Names a run (`None` clears the name). False if there is no such run.
    pub fn set_name(&self, id: u64, name: Option<&str>) -> Result<bool, StoreError> {
        Ok(self.connection.execute("UPDATE runs SET name = ?2 WHERE id = ?1", params![id as i64, name])? == 1)
    }

    /// Records where a run's attempt was placed, and so the device it trains on.
    pub fn set_placement(&self, id: u64, placement: &Placement) -> Result<(), StoreError> {
        // A Slurm job's device is the worker's own: the column keeps the last one known.
        let device = match placement {
            Placement::Local { device, .. } => Some(device),
            Placement::Slurm { .. } => None,
        };
        let json = serde_json::to_string(placement).expect("a placement serialises");
        self.connection.execute(
            "UPDATE runs SET device = COALESCE(?2, device), placement = ?3 WHERE id = ?1",
            params![id as i64, device, json],
        )?;
        Ok(())
    }

    /// Deletes a run with its epochs and checkpoint records if its status is not one of `active`, in one
    /// statement, so a run that starts at the same moment is never deleted. True if it was deleted.
    pub fn delete_run_unless(&self, id: u64, active: &[RunStatus]) -> Result<bool, StoreError> {
        let active: Vec<&str> = active.iter().map(|status| status.as_str()).collect();
        let deleted = self.connection.execute(
            "DELETE FROM runs WHERE id = ?1 AND status NOT IN (SELECT value FROM json_each(?2))",
            params![id as i64, serde_json::to_string(&active).expect("strings serialise")],
        )?;
        Ok(deleted == 1)
    }

    /// Records that a run has a saved model.
    pub fn set_has_model(&self, id: u64) -> Result<(), StoreError> {
        self.connection.execute("UPDATE runs SET has_model = 1 WHERE id = ?1", params![id as i64])?;
        Ok(())
    }

    /// Records (or replaces) a run's best checkpoint.
    pub fn set_best_checkpoint(&self, id: u64, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.in_transaction(|store| {
            store.connection.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, kind, epoch, bytes, saved_at) VALUES (?1, 'best', ?2, ?3, ?4)",
                params![id as i64, checkpoint.epoch, checkpoint.bytes as i64, checkpoint.saved_at as i64],
            )?;
            store.set_has_model(id)
        })
    }

    /// Records that the studio added dataset `name` (replacing an earlier record of that name).
    pub fn add_dataset(&self, name: &str, added: &DatasetAdded) -> Result<(), StoreError> {
        let origin = match added.origin {
            DatasetOrigin::Uploaded => "uploaded",
            DatasetOrigin::Downloaded => "downloaded",
        };
        self.connection.execute(
            "INSERT OR REPLACE INTO datasets (name, origin, added_at) VALUES (?1, ?2, ?3)",
            params![name, origin, added.at as i64],
        )?;
        Ok(())
    }

    /// How and when the studio added dataset `name`, if it did.
    pub fn dataset_added(&self, name: &str) -> Result<Option<DatasetAdded>, StoreError> {
        let row: Option<(String, i64)> = self
            .connection
            .query_row("SELECT origin, added_at FROM datasets WHERE name = ?1", params![name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(origin, at)| {
            let origin = match origin.as_str() {
                "uploaded" => DatasetOrigin::Uploaded,
                "downloaded" => DatasetOrigin::Downloaded,
                other => return Err(StoreError::Corrupt { what: "dataset origin", why: other.to_string() }),
            };
            Ok(DatasetAdded { origin, at: at as u64 })
        })
        .transpose()
    }

    /// Appends (or replaces) one epoch's metrics. Passes the [`fault`] point `record-epoch`, where the
    /// disk-full tests make the write fail as SQLite does on a full disk.
    pub fn add_epoch(&self, id: u64, metrics: &EpochMetrics) -> Result<(), StoreError> {
        fault::point("record-epoch").map_err(|_| disk_full())?;
        self.connection.execute(
            "INSERT OR REPLACE INTO epochs
                (run_id, epoch, train_loss, train_accuracy, test_loss, test_accuracy, seconds,
                 test_top5_accuracy, lr, per_class_accuracy, confusion)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                id as i64,
                metrics.epoch,
                metrics.train_loss,
                metrics.train_accuracy,
                metrics.test_loss,
                metrics.test_accuracy,
                metrics.seconds,
                metrics.test_top5_accuracy,
                metrics.lr,
                serde_json::to_string(&metrics.per_class_accuracy).expect("numbers serialise"),
                serde_json::to_string(&metrics.confusion).expect("numbers serialise"),
            ],
        )?;
        Ok(())
    }

    /// One run with its epochs, if it exists.
    pub fn run(&self, id: u64) -> Result<Option<Run>, StoreError> {
        self.run_read(id, Matrices::Read)
    }

    /// Run `id` without its epochs' per-class accuracies and confusion matrices (left empty): what a
    /// sweep needs of its trials, read without parsing a matrix per epoch (for 100 classes, 10,000
    /// numbers each).
    pub fn run_outline(&self, id: u64) -> Result<Option<Run>, StoreError> {
        self.run_read(id, Matrices::Skip)
    }

    fn run_read(&self, id: u64, matrices: Matrices) -> Result<Option<Run>, StoreError> {
        let row = self
            .connection
            .query_row(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"), params![id as i64], RunRow::from_row)
            .optional()?;
        row.map(|row| self.complete(row, matrices)).transpose()
    }

    /// A number that grows with every row this store writes (SQLite's count of changes on its
    /// connection, through which every write goes): equal numbers mean the same history.
    pub fn version(&self) -> u64 {
        self.connection.total_changes()
    }

    /// Every run with its epochs, newest first.
    pub fn runs(&self) -> Result<Vec<Run>, StoreError> {
        let mut statement = self.connection.prepare(&format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC"))?;
        let rows = statement.query_map([], RunRow::from_row)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|row| self.complete(row, Matrices::Read)).collect()
    }

    /// Whether run `id` has a saved model; `None` when there is no such run. Reads one column of one row.
    pub fn has_model(&self, id: u64) -> Result<Option<bool>, StoreError> {
        let mut statement = self.connection.prepare_cached("SELECT has_model FROM runs WHERE id = ?1")?;
        Ok(statement.query_row(params![id as i64], |row| row.get(0)).optional()?)
    }

    /// The newest run with a saved model, if any.
    pub fn newest_with_model(&self) -> Result<Option<u64>, StoreError> {
        let mut statement =
            self.connection.prepare_cached("SELECT id FROM runs WHERE has_model = 1 ORDER BY id DESC LIMIT 1")?;
        Ok(statement.query_row([], |row| row.get::<_, i64>(0)).optional()?.map(|id| id as u64))
    }

    /// Ids of runs in `status`, oldest first.
    pub fn ids_with_status(&self, status: RunStatus) -> Result<Vec<u64>, StoreError> {
        let mut statement = self.connection.prepare("SELECT id FROM runs WHERE status = ?1 ORDER BY id")?;
        let ids = statement.query_map(params![status.as_str()], |row| row.get::<_, i64>(0))?;
        Ok(ids.map(|id| id.map(|id| id as u64)).collect::<Result<_, _>>()?)
    }

    fn complete(&self, row: RunRow, matrices: Matrices) -> Result<Run, StoreError> {
        let config = serde_json::from_str(&row.config)
            .map_err(|e| StoreError::Corrupt { what: "run config", why: e.to_string() })?;
        let status = RunStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt { what: "run status", why: row.status.clone() })?;
        let classes = serde_json::from_str(&row.classes)
            .map_err(|e| StoreError::Corrupt { what: "class list", why: e.to_string() })?;
        let mut statement = self.connection.prepare_cached(match matrices {
            Matrices::Read => {
                "SELECT epoch, train_loss, train_accuracy, test_loss, test_accuracy, seconds,
                        test_top5_accuracy, lr, per_class_accuracy, confusion
                 FROM epochs WHERE run_id = ?1 ORDER BY epoch"
            }
            Matrices::Skip => {
                "SELECT epoch, train_loss, train_accuracy, test_loss, test_accuracy, seconds,
                        test_top5_accuracy, lr, '[]', '[]'
                 FROM epochs WHERE run_id = ?1 ORDER BY epoch"
            }
        })?;
        let json_column = |r: &rusqlite::Row<'_>, index: usize| -> rusqlite::Result<String> { r.get(index) };
        let rows = statement
            .query_map(params![row.id], |r| {
                Ok((
                    EpochMetrics {
                        epoch: r.get(0)?,
                        train_loss: r.get(1)?,
                        train_accuracy: r.get(2)?,
                        test_loss: r.get(3)?,
                        test_accuracy: r.get(4)?,
                        seconds: r.get(5)?,
                        test_top5_accuracy: r.get(6)?,
                        lr: r.get(7)?,
                        per_class_accuracy: Vec::new(),
                        confusion: Vec::new(),
                    },
                    json_column(r, 8)?,
                    json_column(r, 9)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let corrupt = |e: serde_json::Error| StoreError::Corrupt { what: "epoch metrics", why: e.to_string() };
        let epochs = rows
            .into_iter()
            .map(|(mut metrics, per_class, confusion)| {
                metrics.per_class_accuracy = serde_json::from_str(&per_class).map_err(corrupt)?;
                metrics.confusion = serde_json::from_str(&confusion).map_err(corrupt)?;
                Ok(metrics)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let best_checkpoint = self
            .connection
            .prepare_cached("SELECT epoch, bytes, saved_at FROM checkpoints WHERE run_id = ?1 AND kind = 'best'")?
            .query_row(params![row.id], |r| {
                Ok(Checkpoint {
                    epoch: r.get(0)?,
                    bytes: r.get::<_, i64>(1)? as u64,
                    saved_at: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()?;
        Ok(Run {
            id: row.id as u64,
            status,
            config,
            epochs,
            error: row.error,
            classes,
            created_at: row.created_at as u64,
            has_model: row.has_model,
            best_checkpoint,
            name: row.name,
            device: row.device,
            // A placement this version cannot read (written by a newer one) is shown as none.
            placement: row.placement.and_then(|json| serde_json::from_str(&json).ok()),
            sweep: row.sweep.and_then(|json| serde_json::from_str(&json).ok()),
        })
    }
}

/// The `runs` columns of one row.
struct RunRow {
    id: i64,
    config: String,
    status: String,
    error: Option<String>,
    classes: String,
    created_at: i64,
    has_model: bool,
    name: Option<String>,
    device: Option<String>,
    placement: Option<String>,
    sweep: Option<String>,
}

impl RunRow {
    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(RunRow {
            id: row.get(0)?,
            config: row.get(1)?,
            status: row.get(2)?,
            error: row.get(3)?,
            classes: row.get(4)?,
            created_at: row.get(5)?,
            has_model: row.get(6)?,
            name: row.get(7)?,
            device: row.get(8)?,
            placement: row.get(9)?,
            sweep: row.get(10)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: u32) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: 0.5,
            test_loss: 0.9,
            test_accuracy: 0.6,
            seconds: 2.5,
            test_top5_accuracy: Some(0.9),
            lr: 0.01,
            per_class_accuracy: vec![0.5, 0.7],
            confusion: vec![vec![1, 1], vec![0, 2]],
        }
    }

    #[test]
    fn runs_and_epochs_survive_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("studio.db");
        let config = TrainConfig::for_dataset("tiny");
        {
            let store = Store::open(&path).unwrap();
            let run = store.create_run(&config, 100).unwrap();
            assert_eq!((run.id, run.status), (1, RunStatus::Queued));
            store.set_status(1, RunStatus::Running, None).unwrap();
            store.set_classes(1, &["a".into(), "b".into()]).unwrap();
            store.add_epoch(1, &metrics(1)).unwrap();
            store.add_epoch(1, &metrics(2)).unwrap();
            store.set_has_model(1).unwrap();
            store.create_run(&config, 200).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let runs = store.runs().unwrap();
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [2, 1]);
        let run = store.run(1).unwrap().unwrap();
        assert_eq!(run.config, config);
        assert_eq!(run.epochs, [metrics(1), metrics(2)]);
        assert_eq!(run.classes, ["a", "b"]);
        assert!(run.has_model);
        assert_eq!(store.ids_with_status(RunStatus::Running).unwrap(), [1]);
        assert!(store.run(99).unwrap().is_none());
    }

    /// A sweep reads its trials in outline: the same run, only without the matrices. Prints what that
    /// saves on runs of 100 classes (each epoch's confusion matrix 10,000 numbers).
    #[test]
    fn a_run_in_outline_is_the_run_without_its_per_class_accuracies_and_confusion_matrices() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("studio.db")).unwrap();
        let config = TrainConfig::for_dataset("tiny");
        let classes = 100;
        let (runs, epochs) = (20, 10);
        for _ in 0..runs {
            let id = store.create_run(&config, 0).unwrap().id;
            for epoch in 1..=epochs {
                let mut wide = metrics(epoch);
                wide.per_class_accuracy = vec![0.5; classes];
                wide.confusion = vec![(0..classes as u32).collect(); classes];
                store.add_epoch(id, &wide).unwrap();
            }
        }
        let started = std::time::Instant::now();
        let full: Vec<Run> = (1..=runs).map(|id| store.run(id).unwrap().unwrap()).collect();
        let full_time = started.elapsed();
        let started = std::time::Instant::now();
        let outlines: Vec<Run> = (1..=runs).map(|id| store.run_outline(id).unwrap().unwrap()).collect();
        let outline_time = started.elapsed();
        println!("{runs} runs of {epochs} epochs, {classes} classes: whole {full_time:?}, in outline {outline_time:?}");
        for (mut whole, outline) in full.into_iter().zip(outlines) {
            assert_eq!(whole.epochs[0].confusion.len(), classes);
            for epoch in &mut whole.epochs {
                (epoch.per_class_accuracy, epoch.confusion) = (Vec::new(), Vec::new());
            }
            assert_eq!(whole, outline);
        }
        assert_eq!(store.run_outline(99).unwrap(), None);
    }

    #[test]
    fn the_model_lookup_finds_the_newest_run_with_a_model_and_tells_missing_from_modelless() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("studio.db")).unwrap();
        let config = TrainConfig::for_dataset("tiny");
        assert_eq!(store.newest_with_model().unwrap(), None);
        for _ in 0..3 {
            store.create_run(&config, 0).unwrap();
        }
        store.set_has_model(1).unwrap();
        store.set_has_model(2).unwrap();
        assert_eq!(store.newest_with_model().unwrap(), Some(2), "run 3 has no model");
        assert_eq!([1, 3, 9].map(|id| store.has_model(id).unwrap()), [Some(true), Some(false), None]);
    }

    #[test]
    fn a_name_device_and_placement_are_kept_and_a_name_can_be_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("studio.db");
        let placed = Placement::Local { device: "cpu".into(), slot: 1, threads: 2 };
        {
            let store = Store::open(&path).unwrap();
            let id = store.create_run(&TrainConfig::for_dataset("tiny"), 0).unwrap().id;
            assert!(store.set_name(id, Some("baseline")).unwrap());
            store.set_placement(id, &placed).unwrap();
            assert!(!store.set_name(99, Some("nobody")).unwrap(), "no such run");
        }
        let store = Store::open(&path).unwrap();
        let run = store.run(1).unwrap().unwrap();
        assert_eq!((run.name.as_deref(), run.device.as_deref()), (Some("baseline"), Some("cpu")));
        assert_eq!(run.placement, Some(placed));
        store.set_name(1, None).unwrap();
        assert_eq!(store.run(1).unwrap().unwrap().name, None);
        // Queued again (a resume), it is placed nowhere until it begins again; the device stays as history.
        store.set_status(1, RunStatus::Stopped, None).unwrap();
        assert!(store.change_status(1, &[RunStatus::Stopped], RunStatus::Queued, None).unwrap());
        let run = store.run(1).unwrap().unwrap();
        assert_eq!((run.placement, run.device.as_deref()), (None, Some("cpu")));
    }

    #[test]
    fn a_history_written_before_names_opens_with_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("studio.db");
        {
            // The schema as the three migrations before names left it, with one run in it.
            let mut connection = Connection::open(&path).unwrap();
            let tx = connection.transaction().unwrap();
            for step in &MIGRATIONS[..3] {
                tx.execute_batch(step).unwrap();
            }
            tx.pragma_update(None, "user_version", 3).unwrap();
            tx.execute(
                "INSERT INTO runs (config, status, created_at) VALUES (?1, 'completed', 5)",
                params![serde_json::to_string(&TrainConfig::for_dataset("old")).unwrap()],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let run = store.run(1).unwrap().unwrap();
        assert_eq!((run.config.dataset.as_str(), run.name, run.device), ("old", None, None));
    }

    #[test]
    fn only_a_run_that_is_not_active_is_deleted_with_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("studio.db")).unwrap();
        let id = store.create_run(&TrainConfig::for_dataset("tiny"), 0).unwrap().id;
        store.add_epoch(id, &metrics(1)).unwrap();
        store.set_best_checkpoint(id, &Checkpoint { epoch: 1, bytes: 3, saved_at: 0 }).unwrap();
        let active = [RunStatus::Queued, RunStatus::Running];
        assert!(!store.delete_run_unless(id, &active).unwrap(), "a queued run stays");
        store.set_status(id, RunStatus::Completed, None).unwrap();
        assert!(store.delete_run_unless(id, &active).unwrap());
        assert!(store.run(id).unwrap().is_none());
        let orphans: i64 = store
            .connection
            .query_row("SELECT (SELECT COUNT(*) FROM epochs) + (SELECT COUNT(*) FROM checkpoints)", [], |r| r.get(0))
            .unwrap();
        assert_eq!(orphans, 0, "epochs and checkpoints go with their run");
        assert!(!store.delete_run_unless(id, &active).unwrap(), "already gone");
    }

    #[test]
    fn a_status_changes_only_from_the_states_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("studio.db")).unwrap();
        let id = store.create_run(&TrainConfig::for_dataset("tiny"), 0).unwrap().id;
        let resumable = [RunStatus::Stopped, RunStatus::Failed];
        assert!(
            !store.change_status(id, &resumable, RunStatus::Queued, None).unwrap(),
            "a queued run is not resumable"
        );
        assert!(store.change_status(id, &[RunStatus::Queued], RunStatus::Stopped, Some("asked")).unwrap());
        assert!(store.change_status(id, &resumable, RunStatus::Queued, None).unwrap());
        assert!(!store.change_status(id, &resumable, RunStatus::Queued, None).unwrap(), "only the first of two wins");
        let run = store.run(id).unwrap().unwrap();
        assert_eq!((run.status, run.error), (RunStatus::Queued, None));
    }

    #[test]
    fn a_transaction_that_fails_leaves_no_write_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("studio.db")).unwrap();
        let id = store.create_run(&TrainConfig::for_dataset("tiny"), 0).unwrap().id;
        let failed = store.in_transaction(|store| {
            store.add_epoch(id, &metrics(1))?;
            store.set_classes(id, &["a".into()])?;
            Err::<(), _>(StoreError::Corrupt { what: "test", why: "the second half failed".into() })
        });
        assert!(failed.is_err());
        let run = store.run(id).unwrap().unwrap();
        assert!(run.epochs.is_empty() && run.classes.is_empty(), "both writes were rolled back: {run:?}");
        store.in_transaction(|store| store.add_epoch(id, &metrics(1))).unwrap();
        assert_eq!(store.run(id).unwrap().unwrap().epochs.len(), 1);
    }
}
