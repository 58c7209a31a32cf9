// A key's requests per day as a small bar chart: an inline SVG built here (no third-party
// script, no inline style: the CSP allows neither), with a text alternative for screen
// readers (role="img" and a label that says what the bars show, plus the days as a list).
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 120;
const HEIGHT = 28;
const DAY_FORMAT = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

/** The total of one day of GET /api/keys/<id>/usage (every outcome the gate counted). */
export function dayTotal(day) {
  return day.admitted + day.rate_limited + day.plan_refused;
}

function dayLabel(day) {
  return DAY_FORMAT.format(new Date(`${day.date}T00:00:00Z`));
}

/** A sentence describing the series: total, busiest day, and refusals. */
export function describeUsage(days) {
  const total = days.reduce((sum, day) => sum + dayTotal(day), 0);
  if (total === 0) {
    return `No requests in the last ${days.length} days.`;
  }
  const busiest = days.reduce((best, day) => (dayTotal(day) > dayTotal(best) ? day : best));
  const limited = days.reduce((sum, day) => sum + day.rate_limited, 0);
  const plan = days.reduce((sum, day) => sum + day.plan_refused, 0);
  let text = `${total} requests in the last ${days.length} days; busiest ${dayLabel(busiest)}`
    + ` with ${dayTotal(busiest)}.`;
  if (limited || plan) {
    text += ` Refused: ${limited} rate limited, ${plan} for the plan.`;
  }
  return text;
}

/** The chart element (a <figure> holding the SVG and a visually hidden list of days). */
export function usageChart(days, keyName) {
  const figure = document.createElement("figure");
  figure.className = "usage-chart-figure";
  const svg = document.createElementNS(SVG, "svg");
  svg.classList.add("usage-chart");
  svg.setAttribute("width", String(WIDTH));
  svg.setAttribute("height", String(HEIGHT));
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("role", "img");
  const summary = describeUsage(days);
  svg.setAttribute("aria-label", `Requests per day for key “${keyName}”: ${summary}`);
  const title = document.createElementNS(SVG, "title");
  title.textContent = summary;
  svg.append(title);
  const most = Math.max(1, ...days.map(dayTotal));
  const slot = WIDTH / days.length;
  days.forEach((day, i) => {
    const total = dayTotal(day);
    const height = total ? Math.max(2, Math.round((total / most) * (HEIGHT - 2))) : 1;
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", (i * slot + 0.5).toFixed(2));
    bar.setAttribute("y", String(HEIGHT - height));
    bar.setAttribute("width", Math.max(1, slot - 1).toFixed(2));
    bar.setAttribute("height", String(height));
    bar.setAttribute("class", total ? "bar" : "bar-zero");
    bar.dataset.date = day.date;
    bar.dataset.total = String(total);
    svg.append(bar);
  });
  figure.append(svg);
  // The same numbers as text, for anyone who cannot see the bars.
  const list = document.createElement("ul");
  list.className = "visually-hidden";
  for (const day of days) {
    const item = document.createElement("li");
    item.textContent = `${dayLabel(day)}: ${dayTotal(day)}`;
    list.append(item);
  }
  figure.append(list);
  return figure;
}
