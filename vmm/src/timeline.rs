//! `--timeline FILE.svg`: OSTEP's figure 6.3 drawn from the real run. Time runs left to right;
//! a lane per process shows when it had the CPU (user, green) and its system calls inside that
//! (blue). The kernel lane shows what the kernel was doing: system calls (blue), timer
//! interrupts (yellow), page faults (purple), the handling of an exception (red), idle (light
//! grey), with a mark for each switch along its top (orange: the timer preempted, grey: any
//! other reason).
//! The VMM lane shows each VM exit that reached the VMM (brown), on the guest's clock. Faults
//! are red marks on the faulting process's lane too. `Window` draws a part of the run. The root
//! element carries the geometry (`data-t0-ns`, `data-t1-ns`, `data-plot-x`, `data-plot-width`,
//! and each lane's `data-lane-y-PID`, the VMM's `data-lane-y-vmm`) so a test can find a time's
//! pixel.

use std::collections::BTreeMap;

use abi::trace::{self, Record};
use svg::node::element::{ClipPath, Definitions, Group, Line, Rectangle, Text, Title};
use svg::Document;

use crate::kernel_lane::{Close, KernelLane, Output, Slice};
use crate::trace_json::VmmSpan;
use crate::trap_names::vector_name;

pub const USER: &str = "#2e9e44";
pub const SYSCALL: &str = "#1f6fd1";
pub const TIMER: &str = "#f2c12e";
pub const PAGE_FAULT: &str = "#8e44ad";
pub const INTERRUPT: &str = "#17becf";
pub const IDLE: &str = "#cfcfcf";
pub const VM_EXIT: &str = "#7b4a2d";
pub const PREEMPT: &str = "#f08c00";
pub const SWITCH: &str = "#8a8a8a";
pub const FAULT: &str = "#d62828";

const PLOT_X: f64 = 150.0;
const PLOT_WIDTH: f64 = 1400.0;
const LANE_H: f64 = 22.0;
const LANE_GAP: f64 = 8.0;
const TOP: f64 = 30.0;
/// The height of a switch mark at the top of the kernel lane.
pub const SWITCH_MARK_H: f64 = 7.0;

/// Which part of the run to draw (`--timeline-window START..END`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Window {
    /// All of it.
    Whole,
    /// Nanoseconds since the first event.
    Time(u64, u64),
    /// Event numbers: indices into the records.
    Events(usize, usize),
}

impl std::str::FromStr for Window {
    type Err = String;

    /// "10ms..25ms", "1.5s..", "..300us", "2000..4000" (event numbers).
    fn from_str(s: &str) -> Result<Window, String> {
        let bad = || {
            format!(
                "{s:?}: a window is START..END, both times (10ms..25ms; units ns, us, ms, s) \
                 or both event numbers (2000..4000); either end may be left out"
            )
        };
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let time = |t: &str| -> Option<u64> {
            let (num, scale) = [
                ("ns", 1.0),
                ("us", 1e3),
                ("µs", 1e3),
                ("ms", 1e6),
                ("s", 1e9),
            ]
            .iter()
            .find_map(|(u, k)| t.strip_suffix(u).map(|n| (n, *k)))?;
            let v: f64 = num.trim().parse().ok()?;
            (v >= 0.0 && v.is_finite()).then_some((v * scale) as u64)
        };
        let (a, b) = (a.trim(), b.trim());
        let is_time = |t: &str| t.ends_with('s');
        let window = if is_time(a) || is_time(b) {
            let start = if a.is_empty() { Some(0) } else { time(a) };
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                time(b)
            };
            let (Some(start), Some(end)) = (start, end) else {
                return Err(bad());
            };
            Window::Time(start, end)
        } else {
            let start = if a.is_empty() { Ok(0) } else { a.parse() };
            let end = if b.is_empty() {
                Ok(usize::MAX)
            } else {
                b.parse()
            };
            let (Ok(start), Ok(end)) = (start, end) else {
                return Err(bad());
            };
            Window::Events(start, end)
        };
        match window {
            Window::Time(a, b) if a >= b => Err(format!("{s:?}: the window ends before it starts")),
            Window::Events(a, b) if a >= b => {
                Err(format!("{s:?}: the window ends before it starts"))
            }
            w => Ok(w),
        }
    }
}

fn label(x: f64, y: f64, s: &str, size: u32) -> Text {
    Text::new(s)
        .set("x", x)
        .set("y", y)
        .set("font-family", "sans-serif")
        .set("font-size", size)
}

fn kernel_name(slice: Slice) -> String {
    match slice {
        Slice::Syscall(n) => format!("system call {}", abi::syscall::name(n as usize)),
        Slice::Tick => "timer interrupt".into(),
        Slice::PageFault => "page fault".into(),
        Slice::Interrupt(v) => vector_name(v),
        Slice::Idle => "idle".into(),
        Slice::Exception => "exception handling".into(),
    }
}

fn kernel_colour(slice: Slice) -> &'static str {
    match slice {
        Slice::Syscall(_) => SYSCALL,
        Slice::Tick => TIMER,
        Slice::PageFault => PAGE_FAULT,
        Slice::Interrupt(_) => INTERRUPT,
        Slice::Idle => IDLE,
        Slice::Exception => FAULT,
    }
}

/// The kernel lane's closed slices (start, end, what), drawn once the records are read: an
/// open slice keeps only its start.
#[derive(Default)]
struct KernelSpans(Vec<(u64, u64, Slice)>);

impl Output for KernelSpans {
    type Open = u64;

    fn open(&mut self, _: Slice, _: &Record, ns: u64) -> u64 {
        ns
    }

    fn close(&mut self, slice: Slice, since: u64, _: Close<'_>, ns: u64) {
        self.0.push((since, ns, slice));
    }
}

/// The picture for `records` (in the order the kernel sent them) and the VMM's `exits`, over
/// `window`.
pub fn draw(records: &[Record], exits: &[VmmSpan], window: Window) -> Document {
    let first = records.first().map_or(0, |r| r.ns);
    let last = records.last().map_or(1, |r| r.ns).max(first + 1);
    let (t0, t1) = match window {
        Window::Whole => (first, last),
        Window::Time(a, b) => (
            first.saturating_add(a).min(last - 1),
            first.saturating_add(b).min(last),
        ),
        Window::Events(i, j) => {
            let at = |k: usize| records.get(k.min(records.len().saturating_sub(1)));
            (at(i).map_or(first, |r| r.ns), at(j).map_or(last, |r| r.ns))
        }
    };
    let t1 = t1.max(t0 + 1);
    let x = |ns: u64| PLOT_X + (ns.clamp(t0, t1) - t0) as f64 / (t1 - t0) as f64 * PLOT_WIDTH;
    let visible = |a: u64, b: u64| b >= t0 && a <= t1;
    // Lanes: the kernel, the VMM, then each pid that ran, by pid.
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for r in records {
        let words = match r.kind {
            trace::SWITCH => [r.a[2], r.a[3]],
            trace::EXEC => [r.a[0], r.a[1]],
            _ => continue,
        };
        let pid = if r.kind == trace::SWITCH {
            r.a[0] as u32
        } else {
            r.pid
        };
        let b = trace::unpack_name(words);
        let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        names.insert(pid, String::from_utf8_lossy(&b[..n]).into_owned());
    }
    let lane_y = |i: usize| TOP + i as f64 * (LANE_H + LANE_GAP);
    let (kernel_y, vmm_y) = (lane_y(0), lane_y(1));
    let lanes: BTreeMap<u32, f64> = names
        .keys()
        .enumerate()
        .map(|(i, pid)| (*pid, lane_y(i + 2)))
        .collect();
    let height = lane_y(lanes.len() + 2) + 90.0;
    let width = PLOT_X + PLOT_WIDTH + 60.0;
    let mut doc = Document::new()
        .set("width", width)
        .set("height", height)
        .set("viewBox", (0.0, 0.0, width, height))
        .set("data-first-ns", first)
        .set("data-t0-ns", t0)
        .set("data-t1-ns", t1)
        .set("data-plot-x", PLOT_X)
        .set("data-plot-width", PLOT_WIDTH)
        .set("data-lane-y-0", kernel_y)
        .set("data-lane-y-vmm", vmm_y);
    doc = doc.add(
        Rectangle::new()
            .set("width", "100%")
            .set("height", "100%")
            .set("fill", "white"),
    );
    doc = doc.add(label(PLOT_X - 140.0, kernel_y + 16.0, "kernel", 13));
    doc = doc.add(label(PLOT_X - 140.0, vmm_y + 16.0, "VMM (exits)", 13));
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
    // Each with what it was, for a viewer's hover (--timeline FILE.html shows them).
    let at_ms = |ns: u64| (ns.saturating_sub(first)) as f64 / 1e6;
    let span = |a: u64, b: u64, y: f64, h: f64, fill: &str, what: &str| {
        visible(a, b).then(|| {
            let title = format!(
                "{what}: {:.1} µs from {:.4} ms",
                b.saturating_sub(a) as f64 / 1e3,
                at_ms(a)
            );
            rect(x(a), x(b), y, h, fill).add(Title::new(title))
        })
    };
    let mark = |at: u64, half: f64, y: f64, h: f64, fill: &str, what: &str| {
        (t0..=t1).contains(&at).then(|| {
            let title = format!("{what} at {:.4} ms", at_ms(at));
            rect(x(at) - half, x(at) + half, y, h, fill).add(Title::new(title))
        })
    };
    let who = |pid: u32| format!("pid {pid} {}", names.get(&pid).map_or("", |n| n.as_str()));
    // Layers, drawn in this order: who runs, the calls inside, the kernel's and the VMM's
    // spans, the marks.
    let (mut users, mut calls, mut marks) = (Vec::new(), Vec::new(), Vec::new());
    let (mut kernel, mut kernel_spans) = (KernelLane::default(), KernelSpans::default());
    let mut running: Option<(u32, u64)> = None;
    let mut in_call: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let call_name = |pid: u32, n: u64| format!("{}: {}", who(pid), abi::syscall::name(n as usize));
    let mut draw_call = |pid: u32, (start, n): (u64, u64), end: u64| {
        if let Some(y) = lanes.get(&pid) {
            let what = call_name(pid, n);
            calls.extend(span(start, end, y + 4.0, LANE_H - 8.0, SYSCALL, &what));
        }
    };
    for r in records {
        let ns = r.ns;
        kernel.step(r, ns, &mut kernel_spans);
        match r.kind {
            trace::SYSCALL_ENTER => {
                // A call whose end was not recorded ends where the next begins, as on the
                // kernel's lane (kernel_lane.rs) and in the trace.
                if let Some(open) = in_call.insert(r.pid, (ns, r.a[0])) {
                    draw_call(r.pid, open, ns);
                }
            }
            trace::SYSCALL_EXIT => {
                if let Some(open) = in_call.remove(&r.pid) {
                    draw_call(r.pid, open, ns);
                }
            }
            trace::SWITCH => {
                if let Some((pid, since)) = running.take() {
                    if let Some(y) = lanes.get(&pid) {
                        users.extend(span(since, ns, *y, LANE_H, USER, &who(pid)));
                        // A call open now (it blocked, or yielded) ends here.
                        if let Some(open) = in_call.remove(&pid) {
                            draw_call(pid, open, ns);
                        }
                    }
                }
                running = Some((r.a[0] as u32, ns));
                let colour = if r.a[1] == trace::why_code("preempt") {
                    PREEMPT
                } else {
                    SWITCH
                };
                // In the lane's top third, so that thousands of switches (a yield loop) do
                // not hide what the kernel was doing between them.
                let what = format!(
                    "switch to {} ({})",
                    who(r.a[0] as u32),
                    trace::WHY_NAMES
                        .get(r.a[1] as usize)
                        .copied()
                        .unwrap_or("?")
                );
                marks.extend(mark(ns, 0.5, kernel_y, SWITCH_MARK_H, colour, &what));
            }
            trace::FAULT => {
                if let Some(y) = lanes.get(&r.pid) {
                    let what = format!("fault in {}", who(r.pid));
                    marks.extend(mark(ns, 2.0, *y - 3.0, LANE_H + 6.0, FAULT, &what));
                }
            }
            _ => {}
        }
    }
    if let Some((pid, since)) = running {
        if let Some(y) = lanes.get(&pid) {
            users.extend(span(since, last, *y, LANE_H, USER, &who(pid)));
        }
    }
    kernel.finish(last, &mut kernel_spans);
    let kernel_spans = kernel_spans
        .0
        .iter()
        .filter_map(|&(a, b, k)| span(a, b, kernel_y, LANE_H, kernel_colour(k), &kernel_name(k)));
    let vmm_spans = exits
        .iter()
        .filter_map(|e| span(e.begin_ns, e.end_ns, vmm_y, LANE_H, VM_EXIT, &e.name));
    // The plot in one group, which the HTML viewer scales and moves along the time axis,
    // clipped to the plot's own width.
    doc = doc.add(
        Definitions::new().add(ClipPath::new().set("id", "plot-area").add(rect(
            PLOT_X,
            PLOT_X + PLOT_WIDTH,
            0.0,
            height,
            "white",
        ))),
    );
    let mut plot = Group::new().set("id", "plot");
    for r in users
        .into_iter()
        .chain(calls)
        .chain(kernel_spans)
        .chain(vmm_spans)
        .chain(marks)
    {
        plot = plot.add(r);
    }
    doc = doc.add(Group::new().set("clip-path", "url(#plot-area)").add(plot));
    // The time axis, in ms since the first event.
    let axis_y = lane_y(lanes.len() + 2);
    doc = doc.add(
        Line::new()
            .set("x1", PLOT_X)
            .set("x2", PLOT_X + PLOT_WIDTH)
            .set("y1", axis_y)
            .set("y2", axis_y)
            .set("stroke", "black"),
    );
    // Ticks with as many decimals as the window needs.
    let decimals = match (t1 - t0) as f64 / 1e6 {
        w if w >= 10.0 => 1,
        w if w >= 1.0 => 2,
        w if w >= 0.1 => 3,
        _ => 4,
    };
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
        let ms = format!("{:.*} ms", decimals, (ns - first) as f64 / 1e6);
        doc = doc.add(label(tx - 15.0, axis_y + 18.0, &ms, 11).set("class", "tick"));
    }
    let legend = [
        (USER, "process has the CPU (user)"),
        (SYSCALL, "system call"),
        (TIMER, "timer interrupt"),
        (PAGE_FAULT, "page fault"),
        (INTERRUPT, "device interrupt"),
        (FAULT, "exception, fault"),
        (IDLE, "idle"),
        (VM_EXIT, "VM exit in the VMM"),
        (PREEMPT, "switch: timer preempted"),
        (SWITCH, "switch: other reason"),
    ];
    for (i, (colour, what)) in legend.iter().enumerate() {
        let lx = PLOT_X + (i % 5) as f64 * 280.0;
        let ly = axis_y + 32.0 + (i / 5) as f64 * 20.0;
        doc = doc.add(rect(lx, lx + 14.0, ly, 14.0, colour));
        doc = doc.add(label(lx + 20.0, ly + 12.0, what, 12));
    }
    doc
}

/// The picture as one HTML page (`--timeline FILE.html`): the same SVG, which the page's
/// script zooms (mouse wheel) and moves (drag) along the time axis, double-click for the
/// whole window again; hovering a span shows what it was, its length and start (its
/// `<title>`). The tick labels are hidden while zoomed; a line above says what is shown.
pub fn html(doc: &Document) -> String {
    const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>vmm timeline</title>
<style>
body { margin: 8px; font-family: sans-serif; }
#view { font-size: 13px; margin: 0 0 4px 150px; }
svg { width: 100%; height: auto; cursor: grab; user-select: none; }
</style></head><body>
<div id="view">wheel: zoom in time, drag: move, double-click: everything; hover a span for what it was</div>
<!--PICTURE-->
<script>
(function () {
  const svg = document.querySelector("svg"), plot = document.getElementById("plot");
  const view = document.getElementById("view"), d = svg.dataset;
  const x0 = +d.plotX, w = +d.plotWidth, first = +d.firstNs, t0 = +d.t0Ns, t1 = +d.t1Ns;
  const total = svg.viewBox.baseVal.width;
  let s = 1, o = 0, drag = null;
  const toSvg = (clientX) => {
    const r = svg.getBoundingClientRect();
    return (clientX - r.left) / r.width * total;
  };
  const ms = (X) => ((t0 + (X - x0) / w * (t1 - t0) - first) / 1e6).toFixed(4);
  function show() {
    o = Math.min(0, Math.max(w * (1 - s), o));
    const a = x0 * (1 - s) + o;
    plot.setAttribute("transform", "translate(" + a + " 0) scale(" + s + " 1)");
    for (const t of svg.querySelectorAll(".tick")) t.style.display = s === 1 ? "" : "none";
    view.textContent = s === 1 ? view.dataset.help
      : ms((x0 - a) / s) + " ms .. " + ms((x0 + w - a) / s) + " ms (x" + s.toFixed(1) + ")";
  }
  view.dataset.help = view.textContent;
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const X = toSvg(e.clientX), a = x0 * (1 - s) + o, at = (X - a) / s;
    s = Math.min(1e6, Math.max(1, s * (e.deltaY < 0 ? 1.25 : 0.8)));
    o = X - s * at - x0 * (1 - s);
    show();
  }, { passive: false });
  svg.addEventListener("mousedown", (e) => { drag = { x: toSvg(e.clientX), o: o }; });
  window.addEventListener("mousemove", (e) => {
    if (drag) { o = drag.o + toSvg(e.clientX) - drag.x; show(); }
  });
  window.addEventListener("mouseup", () => { drag = null; });
  svg.addEventListener("dblclick", () => { s = 1; o = 0; show(); });
})();
</script>
</body></html>
"#;
    PAGE.replacen("<!--PICTURE-->", &doc.to_string(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_times_or_event_numbers() {
        let w = |s: &str| s.parse::<Window>();
        assert_eq!(w("10ms..25ms"), Ok(Window::Time(10_000_000, 25_000_000)));
        assert_eq!(w("1.5s.."), Ok(Window::Time(1_500_000_000, u64::MAX)));
        assert_eq!(w("..300us"), Ok(Window::Time(0, 300_000)));
        assert_eq!(w("2000..4000"), Ok(Window::Events(2000, 4000)));
        assert!(w("20ms..10ms").is_err());
        assert!(w("10..").is_ok());
        assert!(w("10ms").is_err());
        assert!(w("ten..20").is_err());
        assert!(w("-1ms..2ms").is_err());
    }
}
