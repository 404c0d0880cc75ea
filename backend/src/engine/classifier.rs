//! The classifier thread: keeps recently used models loaded and answers classification requests
//! through reply channels. Requests that arrive while it works wait in a bounded queue; when it comes
//! back for more it takes every waiting request at once and answers those for the same model (and
//! the same explanation layer) with one forward pass, so a burst of single-image requests is served
//! in batches instead of one forward each.

use super::inference::{Classifier, ClassifyError, ImageAnswer};
use super::panic_message;
use crate::data::images::{Admission, ImageError};
use crate::memory::MemoryBudget;
use crate::model::WEIGHTS_FILE;
use shared::ExplainLayer;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime};
use tch::Device;
use tokio::sync::oneshot;

/// How long the classifier's OpenMP team waits for another request before it ends.
const TEAM_KEEP_ALIVE: Duration = Duration::from_secs(2);
/// Models the classifier thread keeps loaded at once.
const LOADED_MODELS: usize = 4;
/// Classification requests waiting for the classifier thread before new ones are turned away
/// ([`ClassifyError::Busy`]): a burst of this many single-image requests is queued and answered in
/// batches.
pub const CLASSIFY_QUEUE: usize = 64;
/// Encoded bytes the requests waiting or being answered may hold together; a request that would pass
/// it is turned away unless none is held (so one large batch is always taken).
pub const CLASSIFY_QUEUE_BYTES: usize = 256 << 20;
/// Most images answered by one forward pass when requests are joined; a single request with more is
/// answered alone, as one batch.
pub const JOINED_BATCH_IMAGES: usize = 64;

/// A classification's answer: per image, its predictions or why it could not be read; or why the model
/// could not be used at all.
pub type ClassifyAnswer = Result<Vec<Result<ImageAnswer, ImageError>>, ClassifyError>;

/// One request to the classifier thread.
pub struct ClassifyJob {
    /// The folder of the model to classify with.
    pub model_dir: PathBuf,
    /// Encoded image files.
    pub images: Vec<Vec<u8>>,
    /// Explain each image's top class with Grad-CAM at this layer.
    pub explain: Option<ExplainLayer>,
    /// What the images' decoding may hold.
    pub budget: MemoryBudget,
    /// Where the answer goes.
    pub reply: oneshot::Sender<ClassifyAnswer>,
}

impl ClassifyJob {
    fn bytes(&self) -> usize {
        self.images.iter().map(Vec::len).sum()
    }
}

/// The sending side of the classifier thread's queue.
#[derive(Clone)]
pub struct ClassifierQueue {
    jobs: mpsc::SyncSender<ClassifyJob>,
    /// Encoded bytes of the jobs sent and not yet answered.
    queued_bytes: Arc<AtomicUsize>,
}

impl ClassifierQueue {
    /// Starts the classifier thread on `device`.
    pub fn start(device: Device) -> Self {
        let (jobs, requests) = mpsc::sync_channel::<ClassifyJob>(CLASSIFY_QUEUE);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let taken = queued_bytes.clone();
        let threads = tch::get_num_threads().max(1) as usize;
        std::thread::Builder::new()
            .name("classifier".into())
            .spawn(move || run_classifier(device, threads, requests, &taken))
            .expect("spawn classifier thread");
        ClassifierQueue { jobs, queued_bytes }
    }

    /// Puts `job` in the queue without waiting: a full queue (by count or by bytes) is
    /// [`ClassifyError::Busy`], never a blocked async worker.
    pub fn send(&self, job: ClassifyJob) -> Result<(), ClassifyError> {
        let bytes = job.bytes();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::SeqCst);
        let refuse = |queue: &Self| {
            queue.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
            ClassifyError::Busy { queued: CLASSIFY_QUEUE }
        };
        if before > 0 && before + bytes > CLASSIFY_QUEUE_BYTES {
            return Err(refuse(self));
        }
        self.jobs.try_send(job).map_err(|refused| match refused {
            mpsc::TrySendError::Full(_) => refuse(self),
            mpsc::TrySendError::Disconnected(_) => ClassifyError::Stopped,
        })
    }
}

/// Runs `work`, turning a panic into [`ClassifyError::Crashed`] (logged, not shown to the client).
fn contain_panic<T>(during: &'static str, work: impl FnOnce() -> Result<T, ClassifyError>) -> Result<T, ClassifyError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        tracing::error!("the classifier panicked while {during}: {}", panic_message(&panic));
        Err(ClassifyError::Crashed { during })
    })
}

/// The classifier thread's loop. The libtorch work runs in sessions on a thread of their own with
/// `threads` OpenMP threads: a session starts with a request and ends once none has come for
/// [`TEAM_KEEP_ALIVE`], so its OpenMP team is warm for a burst of requests and never stays idle beside
/// training (see [`super::teams`]).
fn run_classifier(device: Device, threads: usize, requests: mpsc::Receiver<ClassifyJob>, queued_bytes: &AtomicUsize) {
    // Keyed by model folder; the weights file's modification time tells when a newer epoch replaced it.
    let mut loaded: HashMap<PathBuf, (SystemTime, Classifier)> = HashMap::new();
    let mut requests = requests;
    while let Ok(first) = requests.recv() {
        let loaded = &mut loaded;
        requests = super::teams::on_own_team("classify", threads, move || {
            let mut next = Some(first);
            while let Some(job) = next {
                let mut waiting = vec![job];
                waiting.extend(std::iter::from_fn(|| requests.try_recv().ok()));
                let bytes = waiting.iter().map(ClassifyJob::bytes).sum();
                for group in join_compatible(waiting) {
                    answer_group(loaded, device, group);
                }
                // Counted until answered: the bound covers what is being classified too.
                queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
                next = requests.recv_timeout(TEAM_KEEP_ALIVE).ok();
            }
            requests
        });
    }
}

/// Splits `jobs`, in arrival order, into groups answered by one forward pass each: consecutive jobs for
/// the same model and explanation, up to [`JOINED_BATCH_IMAGES`] images together.
fn join_compatible(jobs: Vec<ClassifyJob>) -> Vec<Vec<ClassifyJob>> {
    let mut groups: Vec<Vec<ClassifyJob>> = Vec::new();
    for job in jobs {
        let joins = groups.last().is_some_and(|group| {
            let images: usize = group.iter().map(|queued| queued.images.len()).sum();
            let head = &group[0];
            head.model_dir == job.model_dir
                && head.explain == job.explain
                && images + job.images.len() <= JOINED_BATCH_IMAGES
        });
        match groups.last_mut() {
            Some(group) if joins => group.push(job),
            _ => groups.push(vec![job]),
        }
    }
    groups
}

/// Answers a group of jobs for one model with one forward pass, each job receiving its own images'
/// answers. When the model cannot be used, each job of a joined group is answered alone, so each gets
/// its own error.
fn answer_group(loaded: &mut HashMap<PathBuf, (SystemTime, Classifier)>, device: Device, mut group: Vec<ClassifyJob>) {
    let head = &group[0];
    let answers = load_model(loaded, &head.model_dir, device).and_then(|classifier| {
        let images: Vec<&[u8]> = group.iter().flat_map(|job| job.images.iter().map(Vec::as_slice)).collect();
        let admission = Admission::Now(&head.budget);
        contain_panic("classifying", || Ok(classifier.answer(&images, head.explain, admission)))
    });
    match answers {
        Ok(answers) => {
            let mut answers = answers.into_iter();
            for job in group {
                let own = answers.by_ref().take(job.images.len()).collect();
                let _ = job.reply.send(Ok(own));
            }
        }
        Err(error) if group.len() == 1 => {
            let _ = group.remove(0).reply.send(Err(error));
        }
        Err(_) => {
            for job in group {
                answer_group(loaded, device, vec![job]);
            }
        }
    }
}

/// The model saved in `model_dir`, from `loaded` while its weights file is unchanged, else loaded
/// afresh (evicting the oldest when [`LOADED_MODELS`] are loaded).
fn load_model<'a>(
    loaded: &'a mut HashMap<PathBuf, (SystemTime, Classifier)>,
    model_dir: &Path,
    device: Device,
) -> Result<&'a Classifier, ClassifyError> {
    let modified =
        std::fs::metadata(model_dir.join(WEIGHTS_FILE)).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    let fresh = loaded.get(model_dir).is_some_and(|(when, _)| *when == modified);
    if !fresh {
        loaded.remove(model_dir);
        if loaded.len() >= LOADED_MODELS {
            let oldest = loaded.iter().min_by_key(|(_, (when, _))| *when).map(|(k, _)| k.clone());
            oldest.map(|k| loaded.remove(&k));
        }
        let classifier = contain_panic("loading", || Ok(Classifier::load(model_dir, device)?))?;
        loaded.insert(model_dir.to_path_buf(), (modified, classifier));
    }
    Ok(&loaded[model_dir].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(model: &str, images: usize, explain: Option<ExplainLayer>) -> ClassifyJob {
        ClassifyJob {
            model_dir: PathBuf::from(model),
            images: vec![vec![0u8; 8]; images],
            explain,
            budget: MemoryBudget::default(),
            reply: oneshot::channel().0,
        }
    }

    fn shapes(groups: &[Vec<ClassifyJob>]) -> Vec<Vec<usize>> {
        groups.iter().map(|group| group.iter().map(|job| job.images.len()).collect()).collect()
    }

    #[test]
    fn waiting_jobs_for_one_model_are_joined_up_to_a_batch_and_others_keep_their_order() {
        let jobs = vec![
            job("a", 1, None),
            job("a", 1, None),
            job("b", 1, None),
            job("b", 2, Some(ExplainLayer::Auto)),
            job("b", 1, Some(ExplainLayer::Auto)),
            job("a", 1, None),
        ];
        let groups = join_compatible(jobs);
        assert_eq!(shapes(&groups), vec![vec![1, 1], vec![1], vec![2, 1], vec![1]]);
        let models: Vec<&str> = groups.iter().map(|g| g[0].model_dir.to_str().unwrap()).collect();
        assert_eq!(models, ["a", "b", "b", "a"]);
    }

    #[test]
    fn a_join_never_passes_the_batch_limit_and_a_large_request_stays_whole() {
        let mut jobs: Vec<ClassifyJob> = (0..JOINED_BATCH_IMAGES + 3).map(|_| job("a", 1, None)).collect();
        jobs.push(job("a", JOINED_BATCH_IMAGES + 10, None));
        let groups = join_compatible(jobs);
        let sizes: Vec<usize> = shapes(&groups).iter().map(|g| g.iter().sum()).collect();
        assert_eq!(sizes, [JOINED_BATCH_IMAGES, 3, JOINED_BATCH_IMAGES + 10]);
    }

    #[test]
    fn a_full_classify_queue_refuses_at_once_instead_of_waiting() {
        let (jobs, _requests) = mpsc::sync_channel(1);
        let queue = ClassifierQueue { jobs, queued_bytes: Arc::new(AtomicUsize::new(0)) };
        assert!(queue.send(job("a", 1, None)).is_ok());
        assert!(matches!(queue.send(job("a", 1, None)), Err(ClassifyError::Busy { .. })));
        assert_eq!(queue.queued_bytes.load(Ordering::SeqCst), 8, "a refused job's bytes are not counted");
    }

    #[test]
    fn the_queue_is_bounded_by_bytes_but_always_takes_one_job() {
        let (jobs, _requests) = mpsc::sync_channel(CLASSIFY_QUEUE);
        let queue = ClassifierQueue { jobs, queued_bytes: Arc::new(AtomicUsize::new(0)) };
        let large = |megabytes: usize| ClassifyJob { images: vec![vec![0u8; megabytes << 20]], ..job("a", 0, None) };
        assert!(queue.send(large(300)).is_ok(), "alone, a job over the byte bound is taken");
        assert!(matches!(queue.send(large(1)), Err(ClassifyError::Busy { .. })));
    }

    #[test]
    fn a_panic_while_loading_a_model_becomes_an_error() {
        let answer: Result<(), _> = contain_panic("loading", || panic!("libtorch frame 0x1234"));
        assert!(matches!(answer, Err(ClassifyError::Crashed { during: "loading" })));
        assert!(!answer.unwrap_err().to_string().contains("0x1234"));
    }
}
