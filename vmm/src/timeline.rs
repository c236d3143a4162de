//! `--timeline FILE.svg`: OSTEP's figure 6.3 drawn from the real run. Time runs left to right;
//! a lane per process shows when it had the CPU (user, green) and its system calls inside that
//! (blue); the kernel lane marks each switch (orange: the timer preempted, grey: any other
//! reason); faults are red marks on the faulting process's lane. The root element carries the
//! geometry (`data-t0-ns`, `data-t1-ns`, `data-plot-x`, `data-plot-width`, and each lane's
//! `data-lane-y-PID`) so a test can find a time's pixel.

use std::collections::BTreeMap;

use abi::trace::{self, Record};
use svg::node::element::{Line, Rectangle, Text};
use svg::Document;

pub const USER: &str = "#2e9e44";
pub const SYSCALL: &str = "#1f6fd1";
pub const PREEMPT: &str = "#f08c00";
pub const SWITCH: &str = "#8a8a8a";
pub const FAULT: &str = "#d62828";

const PLOT_X: f64 = 150.0;
const PLOT_WIDTH: f64 = 1400.0;
const LANE_H: f64 = 22.0;
const LANE_GAP: f64 = 8.0;
const TOP: f64 = 30.0;

fn label(x: f64, y: f64, s: &str, size: u32) -> Text {
    Text::new(s)
        .set("x", x)
        .set("y", y)
        .set("font-family", "sans-serif")
        .set("font-size", size)
}

/// The picture for `records`, in the order the kernel sent them.
pub fn draw(records: &[Record]) -> Document {
    let t0 = records.first().map_or(0, |r| r.ns);
    let t1 = records.last().map_or(1, |r| r.ns).max(t0 + 1);
    let x = |ns: u64| PLOT_X + (ns.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * PLOT_WIDTH;
    // Lanes: the kernel, then each pid that ran, by pid.
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for r in records.iter().filter(|r| r.kind == trace::SWITCH) {
        let b = trace::unpack_name([r.a[2], r.a[3]]);
        let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        names.insert(r.a[0] as u32, String::from_utf8_lossy(&b[..n]).into_owned());
    }
    let lane_y = |i: usize| TOP + i as f64 * (LANE_H + LANE_GAP);
    let lanes: BTreeMap<u32, f64> = names
        .keys()
        .enumerate()
        .map(|(i, pid)| (*pid, lane_y(i + 1)))
        .collect();
    let height = lane_y(lanes.len() + 1) + 70.0;
    let mut doc = Document::new()
        .set("width", PLOT_X + PLOT_WIDTH + 60.0)
        .set("height", height)
        .set("data-t0-ns", t0)
        .set("data-t1-ns", t1)
        .set("data-plot-x", PLOT_X)
        .set("data-plot-width", PLOT_WIDTH)
        .set("data-lane-y-0", lane_y(0));
    doc = doc.add(
        Rectangle::new()
            .set("width", "100%")
            .set("height", "100%")
            .set("fill", "white"),
    );
    doc = doc.add(label(PLOT_X - 140.0, lane_y(0) + 16.0, "kernel", 13));
    for (pid, y) in &lanes {
        doc = doc.set(format!("data-lane-y-{pid}"), *y);
        let name = format!("{pid} {}", names[pid]);
        doc = doc.add(label(PLOT_X - 140.0, y + 16.0, &name, 13));
    }
    // Spans keep their true width (a short one is faint, not widened into its neighbours);
    // marks are given theirs.
    let rect = |x0: f64, x1: f64, y: f64, h: f64, fill: &str| {
        Rectangle::new()
            .set("x", x0)
            .set("y", y)
            .set("width", (x1 - x0).max(0.0))
            .set("height", h)
            .set("fill", fill)
    };
    // Who runs since when, and which call each task is in since when.
    // Three layers, drawn in this order: who runs, the calls inside, the marks.
    let (mut users, mut calls, mut marks) = (Vec::new(), Vec::new(), Vec::new());
    let mut running: Option<(u32, u64)> = None;
    let mut in_call: BTreeMap<u32, u64> = BTreeMap::new();
    for r in records {
        match r.kind {
            trace::SYSCALL_ENTER => {
                in_call.insert(r.pid, r.ns);
            }
            trace::SYSCALL_EXIT => {
                if let (Some(start), Some(y)) = (in_call.remove(&r.pid), lanes.get(&r.pid)) {
                    calls.push(rect(x(start), x(r.ns), y + 4.0, LANE_H - 8.0, SYSCALL));
                }
            }
            trace::SWITCH => {
                if let Some((pid, since)) = running.take() {
                    if let Some(y) = lanes.get(&pid) {
                        users.push(rect(x(since), x(r.ns), *y, LANE_H, USER));
                        // A call open now (it blocked, or yielded) ends here.
                        if let Some(start) = in_call.remove(&pid) {
                            calls.push(rect(x(start), x(r.ns), y + 4.0, LANE_H - 8.0, SYSCALL));
                        }
                    }
                }
                running = Some((r.a[0] as u32, r.ns));
                let colour = if r.a[1] == trace::why_code("preempt") {
                    PREEMPT
                } else {
                    SWITCH
                };
                marks.push(rect(
                    x(r.ns) - 1.0,
                    x(r.ns) + 1.0,
                    lane_y(0),
                    LANE_H,
                    colour,
                ));
            }
            trace::FAULT => {
                if let Some(y) = lanes.get(&r.pid) {
                    marks.push(rect(
                        x(r.ns) - 2.0,
                        x(r.ns) + 2.0,
                        *y - 3.0,
                        LANE_H + 6.0,
                        FAULT,
                    ));
                }
            }
            _ => {}
        }
    }
    if let Some((pid, since)) = running {
        if let Some(y) = lanes.get(&pid) {
            users.push(rect(x(since), x(t1), *y, LANE_H, USER));
        }
    }
    for r in users.into_iter().chain(calls).chain(marks) {
        doc = doc.add(r);
    }
    // The time axis, in ms since the first event.
    let axis_y = lane_y(lanes.len() + 1);
    doc = doc.add(
        Line::new()
            .set("x1", PLOT_X)
            .set("x2", PLOT_X + PLOT_WIDTH)
            .set("y1", axis_y)
            .set("y2", axis_y)
            .set("stroke", "black"),
    );
    for i in 0..=10 {
        let ns = t0 + (t1 - t0) * i / 10;
        let tx = x(ns);
        doc = doc.add(
            Line::new()
                .set("x1", tx)
                .set("x2", tx)
                .set("y1", axis_y)
                .set("y2", axis_y + 5.0)
                .set("stroke", "black"),
        );
        let ms = format!("{:.1} ms", (ns - t0) as f64 / 1e6);
        doc = doc.add(label(tx - 15.0, axis_y + 18.0, &ms, 11));
    }
    let mut lx = PLOT_X;
    for (colour, what) in [
        (USER, "process has the CPU"),
        (SYSCALL, "in a system call"),
        (PREEMPT, "switch: timer preempted"),
        (SWITCH, "switch: other reason"),
        (FAULT, "fault"),
    ] {
        doc = doc.add(rect(lx, lx + 14.0, axis_y + 32.0, 14.0, colour));
        doc = doc.add(label(lx + 20.0, axis_y + 44.0, what, 12));
        lx += 230.0;
    }
    doc
}
