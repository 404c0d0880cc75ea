//! Runs side by side: the checkbox in each run-list row that adds a run to the comparison, and the
//! Compare runs card once two or more are ticked — a legend, test accuracy and test loss per epoch
//! (one line per run, in the same colour in both charts) and a table of only the settings that differ.
//!
//! The chart geometry is [`crate::chart::compare_chart`]; which settings differ is
//! [`differing_settings`], plain functions tested natively.

use leptos::prelude::*;
use shared::Run;

use crate::chart::{self, CompareChart, CompareMetric};
use crate::{analysis, format, studio};

/// What a setting's cell says for a run whose configuration does not list it.
pub const NOT_LISTED: &str = "—";

/// A setting that differs between compared runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingDifference {
    /// The setting, as the run's configuration names it ([`format::config_fields`]).
    pub label: &'static str,
    /// Its value in each run, in the order of the runs; [`NOT_LISTED`] where a run does not list it.
    pub values: Vec<String>,
}

/// The settings of `runs` whose values are not all the same, in the order of the configuration.
pub fn differing_settings(runs: &[Run]) -> Vec<SettingDifference> {
    let fields: Vec<Vec<(&'static str, String)>> = runs.iter().map(|run| format::config_fields(&run.config)).collect();
    let mut labels: Vec<&'static str> = Vec::new();
    for (label, _) in fields.iter().flatten() {
        if !labels.contains(label) {
            labels.push(label);
        }
    }
    labels
        .into_iter()
        .filter_map(|label| {
            let values: Vec<String> = fields
                .iter()
                .map(|run| {
                    run.iter()
                        .find(|(name, _)| *name == label)
                        .map_or_else(|| NOT_LISTED.to_string(), |(_, v)| v.clone())
                })
                .collect();
            values.iter().any(|value| *value != values[0]).then_some(SettingDifference { label, values })
        })
        .collect()
}

/// What a compared run is called in the legend: `Run #3 (name) — dataset · settings · best 81.2 %`.
pub fn legend_entry(run: &Run) -> String {
    let named = run.name.as_ref().map(|name| format!(" ({name})")).unwrap_or_default();
    let best = analysis::best_epoch(&run.epochs)
        .map_or_else(|| "no epoch yet".to_string(), |m| format!("best {}", format::percent(m.test_accuracy)));
    format!("Run #{}{named} — {} · {} · {best}", run.id, run.config.dataset, format::config_summary(run))
}

/// The checkbox that ticks run `run_id` for comparison, with a visible label naming the run; a named
/// run's name is read out too.
#[component]
pub fn CompareToggle(run_id: u64, name: Option<String>) -> impl IntoView {
    let studio = studio();
    let id = format!("compare-{run_id}");
    let label_for = id.clone();
    view! {
        <label class="compare-toggle" for=label_for>
            <input
                id=id
                type="checkbox"
                class="compare"
                prop:checked=move || studio.compared.with(|c| c.contains(&run_id))
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    studio.compared.update(|c| {
                        c.retain(|&other| other != run_id);
                        if on {
                            c.push(run_id);
                        }
                    });
                }
            />
            <span class="compare-text">{format!("Compare run {run_id}")}</span>
            {name.map(|name| view! { <span class="visually-hidden">{format!(" ({name})")}</span> })}
        </label>
    }
}

/// The ticked runs side by side, once two or more are ticked.
#[component]
pub fn CompareRuns() -> impl IntoView {
    let studio = studio();
    let compared = Memo::new(move |_| {
        studio
            .compared
            .with(|ids| studio.state.with(|s| ids.iter().filter_map(|&id| s.run(id).cloned()).collect::<Vec<Run>>()))
    });
    let charts = NodeRef::<leptos::html::Div>::new();
    let drawn = crate::layout::drawn_width(charts);
    view! {
        <Show when=move || compared.with(|runs| runs.len() >= 2)>
            <section class="card compare-card" aria-labelledby="compare-title">
                <div class="detail-head">
                    <h2 id="compare-title">"Compare runs"</h2>
                    <button type="button" class="small" on:click=move |_| studio.compared.set(Vec::new())>
                        "Clear"
                    </button>
                </div>
                {move || {
                    let runs = compared.get();
                    let fit = crate::layout::ChartFit::following(drawn.get());
                    view! {
                        <CompareLegend runs=runs.clone()/>
                        <div class="compare-charts" node_ref=charts>
                            {CompareMetric::ALL.map(|metric| compare_svg(chart::compare_chart(&runs, metric), fit))}
                        </div>
                        <DifferingSettings runs=runs/>
                    }
                }}
                <crate::versions::PerClassChange runs=compared/>
            </section>
        </Show>
    }
}

/// One entry per compared run, in its line colour.
#[component]
fn CompareLegend(runs: Vec<Run>) -> impl IntoView {
    let entries = runs
        .iter()
        .enumerate()
        .map(|(position, run)| {
            view! {
                <li class="compare-entry" data-run-id=run.id>
                    {swatch(position)}
                    {legend_entry(run)}
                </li>
            }
        })
        .collect_view();
    view! { <ul class="compare-legend">{entries}</ul> }
}

/// The colour of the compared run at `position`, as a small square beside its name.
fn swatch(position: usize) -> impl IntoView {
    let style = format!("background: {}", chart::compare_colour(position));
    view! { <span class="swatch" style=style aria-hidden="true"></span> }
}

/// One comparison chart as an SVG fitted to its drawn width by `fit`: `#compare-accuracy` or `#compare-loss`.
fn compare_svg(plot: CompareChart, fit: crate::layout::ChartFit) -> impl IntoView {
    let width = fit.view_width;
    let plot = plot.fit_width(width);
    let frame = plot.frame;
    let title = plot.metric.title();
    let lines = plot
        .lines
        .into_iter()
        .map(|line| {
            let markers = line
                .points
                .iter()
                .zip(line.notes)
                .map(|(&(x, y), note)| {
                    view! {
                        <circle class="marker" cx=x cy=y r="3" style=format!("fill: {}", line.colour)>
                            <title>{note}</title>
                        </circle>
                    }
                })
                .collect_view();
            view! {
                <polyline
                    class="series compare-line"
                    data-run-id=line.run_id
                    style=format!("stroke: {}", line.colour)
                    points=chart::polyline(&line.points)
                ></polyline>
                {markers}
            }
        })
        .collect_view();
    view! {
        <svg
            id=format!("compare-{}", plot.metric.key())
            class="chart compare-chart"
            viewBox=format!("0 0 {width} {}", chart::COMPARE_HEIGHT)
            style=fit.style()
            role="img"
            aria-label=format!("{title} per epoch of the compared runs")
        >
            <text class="panel-title" x=frame.left y=frame.top - 14.0>{title}</text>
            {crate::axes(frame, &plot.x_ticks, &plot.y_ticks)}
            {lines}
        </svg>
    }
}

/// The settings the compared runs were started with that are not all the same.
#[component]
fn DifferingSettings(runs: Vec<Run>) -> impl IntoView {
    let differences = differing_settings(&runs);
    let body = if differences.is_empty() {
        view! { <p class="empty" id="compare-same-settings">"The compared runs were started with the same settings."</p> }
            .into_any()
    } else {
        let heads = runs
            .iter()
            .enumerate()
            .map(|(position, run)| {
                view! {
                    <th scope="col" data-run-id=run.id>
                        {swatch(position)}
                        {format!("Run #{}", run.id)}
                    </th>
                }
            })
            .collect_view();
        let rows = differences
            .into_iter()
            .map(|difference| {
                view! {
                    <tr>
                        <th scope="row">{difference.label}</th>
                        {difference.values.into_iter().map(|value| view! { <td>{value}</td> }).collect_view()}
                    </tr>
                }
            })
            .collect_view();
        view! {
            <div class="table-wrap" tabindex="0">
                <table id="compare-settings" class="compare-settings">
                    <thead>
                        <tr>
                            <th scope="col">"Setting"</th>
                            {heads}
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    view! {
        <section class="compare-differences" aria-labelledby="compare-settings-title">
            <h3 id="compare-settings-title">"Settings that differ"</h3>
            {body}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, config: serde_json::Value) -> Run {
        serde_json::from_value(serde_json::json!({
            "id": id, "status": "completed", "config": config, "epochs": [], "created_at": 0,
        }))
        .unwrap()
    }

    fn label_of(field: fn(&mut shared::TrainConfig)) -> &'static str {
        let base = shared::TrainConfig::default();
        let mut changed = base.clone();
        field(&mut changed);
        let before = format::config_fields(&base);
        let after = format::config_fields(&changed);
        let differing: Vec<&'static str> =
            before.iter().zip(&after).filter(|(a, b)| a.1 != b.1).map(|(a, _)| a.0).collect();
        assert_eq!(differing.len(), 1, "{differing:?}");
        differing[0]
    }

    #[test]
    fn only_the_settings_that_differ_are_listed_with_each_runs_value() {
        let runs = [
            run(1, serde_json::json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "lr": 0.01})),
            run(2, serde_json::json!({"dataset": "colors", "epochs": 1, "batch_size": 8, "lr": 0.05})),
        ];
        let differences = differing_settings(&runs);
        let labels: Vec<&str> = differences.iter().map(|d| d.label).collect();
        assert_eq!(labels, [label_of(|c| c.batch_size = 9), label_of(|c| c.lr = 0.7)]);
        assert_eq!(differences[0].values, ["4", "8"]);
        assert_eq!(differences[1].values, ["0.01", "0.05"]);
    }

    #[test]
    fn a_setting_differs_when_any_of_three_runs_differs() {
        let runs = [
            run(1, serde_json::json!({"dataset": "colors", "seed": 1})),
            run(2, serde_json::json!({"dataset": "colors", "seed": 1})),
            run(3, serde_json::json!({"dataset": "colors", "seed": 2})),
        ];
        let differences = differing_settings(&runs);
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].values, ["1", "1", "2"]);
    }

    #[test]
    fn runs_with_the_same_settings_differ_in_nothing() {
        let config = serde_json::json!({"dataset": "colors", "epochs": 3});
        assert!(differing_settings(&[run(1, config.clone()), run(2, config)]).is_empty());
        assert!(differing_settings(&[]).is_empty());
    }

    #[test]
    fn the_legend_names_the_run_its_dataset_and_best_accuracy() {
        let mut named = run(4, serde_json::json!({"dataset": "colors", "epochs": 2}));
        named.name = Some("warm start".into());
        named.epochs = vec![serde_json::from_value(serde_json::json!({
            "epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0,
            "test_accuracy": 0.8, "seconds": 1.0,
        }))
        .unwrap()];
        let entry = legend_entry(&named);
        assert!(entry.starts_with("Run #4 (warm start) — colors · "), "{entry}");
        assert!(entry.ends_with(" · best 80.0 %"), "{entry}");
        let unnamed = legend_entry(&run(5, serde_json::json!({"dataset": "colors"})));
        assert!(unnamed.starts_with("Run #5 — colors") && unnamed.ends_with("no epoch yet"), "{unnamed}");
    }
}
