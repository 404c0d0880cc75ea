//! Camera mode of the classify card: "Use camera" opens the camera (`getUserMedia`), and frames are
//! classified live with the chosen model, one request at a time: a frame is drawn to a canvas, sent as a
//! JPEG to `POST /api/classify`, and the next is taken once the answer is in, so the frame rate is what
//! the server and the connection allow. The card shows the latest top predictions, the run that gave them
//! and the frames classified per second; "Stop camera" ends the camera's tracks, which turns the camera off.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::Prediction;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::api;
use crate::classify::{prediction_items, run_caption};
use crate::state::StudioState;

/// The longest side of a frame sent to the server, in pixels: the model sees far fewer (it is resized to
/// the run's input size), so larger frames would only cost upload time.
pub const FRAME_SIDE: u32 = 224;

/// How many of the latest frames the frame rate is measured over.
pub const RATE_WINDOW: usize = 10;

/// How many predictions the live view lists.
const LIVE_PREDICTIONS: usize = 3;

/// The size to draw a `width` x `height` video frame at: scaled down, keeping its shape, so that its
/// longest side is at most `max_side`; never below 1 x 1. `None` before the video has a frame.
pub fn frame_size(width: u32, height: u32, max_side: u32) -> Option<(u32, u32)> {
    if width == 0 || height == 0 {
        return None;
    }
    let longest = width.max(height);
    if longest <= max_side {
        return Some((width, height));
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(max_side) + u64::from(longest) / 2) / u64::from(longest)).max(1) as u32
    };
    Some((scale(width), scale(height)))
}

/// Frames per second over the answer times `times` (milliseconds, oldest first): the frames after the
/// first, divided by the time they took. `None` until two frames are in or when no time has passed.
pub fn frames_per_second(times: &[f64]) -> Option<f64> {
    let (first, last) = (times.first()?, times.last()?);
    let elapsed = last - first;
    (times.len() >= 2 && elapsed > 0.0).then(|| (times.len() - 1) as f64 * 1000.0 / elapsed)
}

/// Adds `now` to the answer times, keeping the last `RATE_WINDOW + 1` (so the rate spans `RATE_WINDOW`
/// frame intervals).
pub fn record_time(times: &mut Vec<f64>, now: f64) {
    times.push(now);
    let excess = times.len().saturating_sub(RATE_WINDOW + 1);
    times.drain(..excess);
}

/// The sentence for a camera that could not be opened, from the browser's error name (`None`: the browser
/// offers no camera API on this page at all).
pub fn camera_refusal(error_name: Option<&str>) -> String {
    match error_name {
        None => "This browser offers no camera here: cameras are available only on https:// pages and on localhost."
            .into(),
        Some("NotAllowedError" | "SecurityError") => {
            "The browser was not allowed to use the camera: allow it for this page in the site settings, then try again."
                .into()
        }
        Some("NotFoundError" | "OverconstrainedError") => "No camera was found.".into(),
        Some("NotReadableError" | "AbortError") => {
            "The camera could not be opened: another program may be using it.".into()
        }
        Some(_) => "The camera could not be started.".into(),
    }
}

/// The latest answer for a frame.
#[derive(Debug, Clone, PartialEq)]
struct LiveAnswer {
    /// The run that answered, e.g. `run 3 · my-run`.
    caption: String,
    /// Its top predictions, most likely first.
    predictions: Vec<Prediction>,
}

/// What the camera mode shows, and the handles that end it.
#[derive(Clone, Copy)]
struct Camera {
    video: NodeRef<leptos::html::Video>,
    /// Whether the camera is on.
    live: RwSignal<bool>,
    starting: RwSignal<bool>,
    answer: RwSignal<Option<LiveAnswer>>,
    rate: RwSignal<Option<f64>>,
    error: RwSignal<Option<String>>,
    /// Counts the times the camera was started or stopped: a frame loop ends when it changes.
    session: StoredValue<u64>,
    stream: StoredValue<Option<web_sys::MediaStream>, LocalStorage>,
}

impl Camera {
    fn new() -> Self {
        Camera {
            video: NodeRef::new(),
            live: RwSignal::new(false),
            starting: RwSignal::new(false),
            answer: RwSignal::new(None),
            rate: RwSignal::new(None),
            error: RwSignal::new(None),
            session: StoredValue::new(0),
            stream: StoredValue::new_local(None),
        }
    }

    /// Whether session `session` is still the current one (false once the card is gone).
    fn current(self, session: u64) -> bool {
        self.session.try_get_value() == Some(session)
    }

    /// Opens the camera and classifies its frames with `run` until stopped.
    fn start(self, run: Memo<Option<u64>>, state: RwSignal<StudioState>) {
        self.session.update_value(|s| *s += 1);
        let session = self.session.get_value();
        self.error.set(None);
        self.starting.set(true);
        spawn_local(async move {
            let opened = open_camera().await;
            let video = self.video.get_untracked();
            match (opened, video) {
                (Ok(stream), Some(video)) if self.current(session) => {
                    video.set_src_object(Some(&stream));
                    self.stream.set_value(Some(stream));
                    self.live.set(true);
                    self.starting.set(false);
                    if let Err(why) = play(&video).await {
                        self.error.set(Some(why));
                        return self.stop();
                    }
                    self.classify_frames(session, &video, run, state).await;
                }
                (Ok(stream), _) => end_tracks(&stream),
                (Err(why), _) => {
                    self.error.set(Some(why));
                    self.starting.set(false);
                }
            }
        });
    }

    /// Sends a frame, waits for its answer, shows it, and takes the next, while `session` lasts.
    async fn classify_frames(
        self,
        session: u64,
        video: &web_sys::HtmlVideoElement,
        run: Memo<Option<u64>>,
        state: RwSignal<StudioState>,
    ) {
        let Some(canvas) = new_canvas() else {
            self.error.set(Some("The browser could not draw the camera's picture.".into()));
            return self.stop();
        };
        let mut times = Vec::with_capacity(RATE_WINDOW + 1);
        while self.current(session) {
            let Some(run_id) = run.try_get_untracked().flatten() else {
                self.error.set(Some("No run has a trained model yet: train one first.".into()));
                return self.stop();
            };
            let Some(frame) = grab_frame(video, &canvas).await else {
                gloo_timers::future::TimeoutFuture::new(50).await;
                continue;
            };
            let answer = api::classify_image(run_id, &frame).await;
            if !self.current(session) {
                return;
            }
            match answer {
                Ok(answer) => {
                    let name = state.with_untracked(|s| s.run(answer.run_id).and_then(|r| r.name.clone()));
                    let mut predictions = answer.predictions;
                    predictions.truncate(LIVE_PREDICTIONS);
                    self.answer
                        .set(Some(LiveAnswer { caption: run_caption(answer.run_id, name.as_deref()), predictions }));
                    record_time(&mut times, js_sys::Date::now());
                    self.rate.set(frames_per_second(&times));
                    self.error.set(None);
                }
                Err(why) => {
                    self.error.set(Some(format!("A frame could not be classified: {why}")));
                    gloo_timers::future::TimeoutFuture::new(500).await;
                }
            }
        }
    }

    /// Ends the frame loop and the camera's tracks, which turns the camera off.
    fn stop(self) {
        self.session.try_update_value(|s| *s += 1);
        if let Some(stream) = self.stream.try_update_value(Option::take).flatten() {
            end_tracks(&stream);
        }
        if let Some(video) = self.video.try_get_untracked().flatten() {
            video.set_src_object(None);
        }
        self.live.try_set(false);
        self.starting.try_set(false);
        self.rate.try_set(None);
        self.answer.try_set(None);
    }
}

/// Asks the browser for the camera's video.
async fn open_camera() -> Result<web_sys::MediaStream, String> {
    let devices = window().navigator().media_devices().ok().filter(|devices| !devices.is_undefined());
    let devices = devices.ok_or_else(|| camera_refusal(None))?;
    let constraints = web_sys::MediaStreamConstraints::new();
    constraints.set_video(&JsValue::TRUE);
    constraints.set_audio(&JsValue::FALSE);
    let refusal = |error: JsValue| {
        camera_refusal(Some(&error.dyn_ref::<web_sys::DomException>().map(|e| e.name()).unwrap_or_default()))
    };
    let promise = devices.get_user_media_with_constraints(&constraints).map_err(refusal)?;
    let stream = JsFuture::from(promise).await.map_err(refusal)?;
    stream.dyn_into().map_err(|_| camera_refusal(Some("")))
}

/// Starts the video and waits until it has a frame to draw.
async fn play(video: &web_sys::HtmlVideoElement) -> Result<(), String> {
    let failed = |_| "The camera's picture could not be shown.".to_string();
    JsFuture::from(video.play().map_err(failed)?).await.map_err(failed)?;
    for _ in 0..100 {
        if video.video_width() > 0 {
            return Ok(());
        }
        gloo_timers::future::TimeoutFuture::new(50).await;
    }
    Err("The camera sent no picture.".into())
}

fn end_tracks(stream: &web_sys::MediaStream) {
    for track in stream.get_tracks().iter() {
        track.unchecked_into::<web_sys::MediaStreamTrack>().stop();
    }
}

fn new_canvas() -> Option<web_sys::HtmlCanvasElement> {
    document().create_element("canvas").ok()?.dyn_into().ok()
}

/// The video's current frame as a JPEG, at most [`FRAME_SIDE`] pixels a side.
async fn grab_frame(video: &web_sys::HtmlVideoElement, canvas: &web_sys::HtmlCanvasElement) -> Option<web_sys::Blob> {
    let (width, height) = frame_size(video.video_width(), video.video_height(), FRAME_SIDE)?;
    canvas.set_width(width);
    canvas.set_height(height);
    let context: web_sys::CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    context
        .draw_image_with_html_video_element_and_dw_and_dh(video, 0.0, 0.0, f64::from(width), f64::from(height))
        .ok()?;
    let (sent, received) = futures::channel::oneshot::channel();
    let callback = Closure::once(move |blob: Option<web_sys::Blob>| {
        let _ = sent.send(blob);
    });
    canvas.to_blob_with_type(callback.as_ref().unchecked_ref(), "image/jpeg").ok()?;
    let blob = received.await.ok().flatten();
    drop(callback);
    blob
}

/// "Use camera" and the live view of what the model `run` sees in it.
#[component]
pub fn CameraMode(run: Memo<Option<u64>>) -> impl IntoView {
    let state = crate::studio().state;
    let camera = Camera::new();
    on_cleanup(move || camera.stop());
    let rate = move || camera.rate.get().map(|fps| format!("{fps:.1} frames/s"));
    view! {
        <div class="camera">
            <Show
                when=move || camera.live.get()
                fallback=move || view! {
                    <button
                        id="camera-start"
                        type="button"
                        disabled=move || run.get().is_none() || camera.starting.get()
                        on:click=move |_| camera.start(run, state)
                    >
                        {move || if camera.starting.get() { "Starting the camera…" } else { "Use camera" }}
                    </button>
                    {move || run.get().is_none().then(|| view! {
                        <span class="hint">"The camera needs a trained model: train one first."</span>
                    })}
                }
            >
                <button id="camera-stop" type="button" on:click=move |_| camera.stop()>"Stop camera"</button>
            </Show>
            <div class="camera-live" hidden=move || !camera.live.get()>
                <video node_ref=camera.video id="camera-video" prop:muted=true autoplay playsinline aria-label="What the camera sees"></video>
                <div class="camera-result" aria-live="polite">
                    <p id="camera-rate" class="camera-rate">{rate}</p>
                    <p id="camera-run" class="answered-by">{move || camera.answer.with(|a| a.as_ref().map(|a| a.caption.clone()))}</p>
                    <ul id="camera-predictions" class="predictions">
                        {move || camera.answer.get().map(|a| prediction_items(a.predictions))}
                    </ul>
                </div>
            </div>
            <p id="camera-error" class="error" role="alert">{move || camera.error.get()}</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_scaled_down_to_the_longest_side_keeping_its_shape() {
        assert_eq!(frame_size(640, 480, 224), Some((224, 168)));
        assert_eq!(frame_size(480, 640, 224), Some((168, 224)));
        assert_eq!(frame_size(100, 50, 224), Some((100, 50)), "small frames stay as they are");
        assert_eq!(frame_size(10_000, 1, 224), Some((224, 1)), "never below one pixel");
        assert_eq!(frame_size(0, 480, 224), None, "no frame yet");
    }

    #[test]
    fn the_rate_counts_frame_intervals_over_their_time() {
        assert_eq!(frames_per_second(&[]), None);
        assert_eq!(frames_per_second(&[5.0]), None);
        assert_eq!(frames_per_second(&[5.0, 5.0]), None);
        assert_eq!(frames_per_second(&[0.0, 250.0, 500.0]), Some(4.0));
    }

    #[test]
    fn the_rate_is_measured_over_the_latest_frames() {
        let mut times = Vec::new();
        for i in 0..50 {
            // 20 frames a second at first, then 5.
            record_time(&mut times, if i < 30 { f64::from(i) * 50.0 } else { 1450.0 + f64::from(i - 29) * 200.0 });
        }
        assert_eq!(times.len(), RATE_WINDOW + 1);
        assert_eq!(frames_per_second(&times), Some(5.0));
    }

    #[test]
    fn a_camera_that_does_not_open_is_explained() {
        assert!(camera_refusal(None).contains("https://"));
        assert!(camera_refusal(Some("NotAllowedError")).contains("allow it"));
        assert_eq!(camera_refusal(Some("NotFoundError")), "No camera was found.");
        assert!(camera_refusal(Some("NotReadableError")).contains("another program"));
        assert_eq!(camera_refusal(Some("Weird")), "The camera could not be started.");
    }
}
