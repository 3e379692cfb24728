/**
 * The Check button: on a notebook's toolbar (JupyterLab 4 and Notebook 7), it saves the
 * notebook and grades it on the server with `grader check` (the grader's Jupyter Server
 * extension, `grader/jupyter`), shows what it is doing while it runs, lets the student cancel,
 * and shows the verdicts above the notebook in the words `grader check` prints.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, ToolbarButton } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { IMainMenu } from '@jupyterlab/mainmenu';
import {
  INotebookModel,
  INotebookTracker,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { DisposableDelegate, IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

const POLL_MILLISECONDS = 1000;

interface ICheckResult {
  id: string;
  status: string;
  score: number | null;
  max_score: number | null;
  checks: {
    id: string;
    status: string;
    points: number;
    max_points: number;
    message: string;
  }[];
  warnings: string[];
  error: string | null;
  answers: {
    question: string;
    text: string;
    cells: number[];
    found_by: string;
  }[];
  fault: string | null;
}

interface ICheckState {
  id: string;
  path: string;
  mode: string;
  elapsed: number;
  state: 'running' | 'done' | 'cancelled' | 'error';
  doing?: string;
  result?: ICheckResult;
  page?: string | null;
  error?: string;
}

/** A call to the grader's API on the Jupyter server, with its authentication and XSRF token. */
async function requestAPI(path: string, init: RequestInit = {}): Promise<ICheckState> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'grader', 'checks', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new Error(`The Jupyter server could not be reached: ${error}`);
  }
  const text = await response.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (response.status === 404 && path === '') {
      throw new Error(
        "The grader's server extension is not enabled on this Jupyter server " +
          '(jupyter server extension list shows it): install the grader in the environment Jupyter runs from.'
      );
    }
    throw new Error(body?.message || text || response.statusText);
  }
  return body as ICheckState;
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  className?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined) {
    node.textContent = text; // never markup: what a notebook wrote is shown as text
  }
  if (className) {
    node.className = className;
  }
  return node;
}

function points(value: number | null): string {
  return value === null ? 'none' : String(Number(value.toPrecision(6)));
}

/** The verdicts above the notebook: what runs, then what came of it. */
class CheckPanel extends Widget {
  constructor() {
    super();
    this.addClass('jp-GraderCheck');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Check');
    this.hide();
  }

  showRunning(state: ICheckState, cancel: () => void): void {
    this.clear();
    const line = element('div', undefined, 'jp-GraderCheck-running');
    line.append(
      element(
        'span',
        `Checking (${state.mode} mode): ${state.doing ?? 'starting'}, ${Math.round(state.elapsed)} s`,
        'jp-GraderCheck-doing'
      )
    );
    const button = element('button', 'Cancel', 'jp-GraderCheck-cancel');
    button.onclick = cancel;
    line.append(button);
    this.node.append(line);
    this.reveal();
  }

  showError(message: string): void {
    this.clear();
    this.node.append(element('div', message, 'jp-GraderCheck-error'));
    this.closer();
    this.reveal();
  }

  showCancelled(): void {
    this.clear();
    this.node.append(element('div', 'The check was cancelled.', 'jp-GraderCheck-note'));
    this.closer();
    this.reveal();
  }

  showResult(state: ICheckState): void {
    const result = state.result as ICheckResult;
    this.clear();
    const score = element('div', undefined, 'jp-GraderCheck-score');
    if (result.score === null) {
      score.textContent =
        "Score: none: not graded, through no fault of the notebook's";
    } else {
      score.append('Score: ');
      score.append(
        element(
          'strong',
          `${points(result.score)} / ${points(result.max_score)}`,
          'jp-GraderCheck-points'
        )
      );
    }
    score.append(` (${state.mode} mode, ${Math.round(state.elapsed)} s)`);
    this.node.append(score);
    const table = element('table', undefined, 'jp-GraderCheck-checks');
    const head = element('tr');
    for (const title of ['check', 'verdict', 'points', 'what to do']) {
      head.append(element('th', title));
    }
    table.append(head);
    for (const check of result.checks) {
      const row = element('tr', undefined, `jp-GraderCheck-${check.status}`);
      row.append(element('td', check.id));
      row.append(element('td', check.status, 'jp-GraderCheck-verdict'));
      row.append(
        element('td', `${points(check.points)}/${points(check.max_points)}`)
      );
      row.append(element('td', check.message));
      table.append(row);
    }
    this.node.append(table);
    if (result.error) {
      this.node.append(element('div', result.error, 'jp-GraderCheck-error'));
    }
    for (const warning of result.warnings) {
      this.node.append(
        element('div', `warning: ${warning}`, 'jp-GraderCheck-warning')
      );
    }
    for (const answer of result.answers) {
      const found = answer.text.trim()
        ? `found (${answer.found_by}, cells ${answer.cells.join(', ')})`
        : 'no answer found';
      this.node.append(
        element(
          'div',
          `Written answer to ${answer.question}: ${found}`,
          'jp-GraderCheck-answer'
        )
      );
    }
    if (state.page) {
      const settings = ServerConnection.makeSettings();
      const link = element('a', "The notebook's page", 'jp-GraderCheck-page');
      link.href = URLExt.join(
        settings.baseUrl,
        'grader',
        'checks',
        state.id,
        state.page
      );
      link.target = '_blank';
      link.rel = 'noopener';
      this.node.append(link);
    }
    this.closer();
    this.reveal();
  }

  private clear(): void {
    this.node.replaceChildren();
  }

  /** Shown, as tall as what it holds (at most 40% of the window, then it scrolls): the
   * notebook's header lays its widgets out at the heights they ask for. */
  private reveal(): void {
    this.show();
    this.node.style.minHeight = '0px';
    const height = Math.min(this.node.scrollHeight, Math.round(window.innerHeight * 0.4));
    this.node.style.minHeight = `${height}px`;
    this.parent?.fit();
  }

  private closer(): void {
    const button = element('button', 'Close', 'jp-GraderCheck-close');
    button.onclick = () => {
      this.hide();
      this.parent?.fit();
    };
    this.node.append(button);
  }
}

/** One notebook's checks: one at a time, its panel above the notebook. */
class NotebookChecks {
  constructor(
    panel: NotebookPanel,
    private readonly context: DocumentRegistry.IContext<INotebookModel>
  ) {
    this.view = new CheckPanel();
    panel.contentHeader.addWidget(this.view);
  }

  readonly view: CheckPanel;
  running: string | null = null;
  busy = false;
  onChange: () => void = () => undefined;

  async run(full: boolean): Promise<void> {
    if (this.busy) {
      return; // a second click while one runs starts nothing
    }
    this.busy = true;
    this.onChange();
    try {
      try {
        await this.context.save();
      } catch (error) {
        this.view.showError(
          `The notebook could not be saved, so it was not checked: ${error}`
        );
        return;
      }
      let state = await requestAPI('', {
        method: 'POST',
        body: JSON.stringify({ path: this.context.path, full })
      });
      this.running = state.id;
      while (state.state === 'running') {
        this.view.showRunning(state, () => void this.cancel());
        await new Promise(resolve => setTimeout(resolve, POLL_MILLISECONDS));
        state = await requestAPI(state.id);
      }
      if (state.state === 'done') {
        this.view.showResult(state);
      } else if (state.state === 'cancelled') {
        this.view.showCancelled();
      } else {
        this.view.showError(
          `The grader could not check the notebook: ${state.error}`
        );
      }
    } catch (error) {
      this.view.showError(`${error instanceof Error ? error.message : error}`);
    } finally {
      this.running = null;
      this.busy = false;
      this.onChange();
    }
  }

  async cancel(): Promise<void> {
    if (this.running !== null) {
      await requestAPI(this.running, { method: 'DELETE' });
    }
  }
}

const CHECKS = new WeakMap<NotebookPanel, NotebookChecks>();

class CheckButtonExtension
  implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel>
{
  createNew(
    panel: NotebookPanel,
    context: DocumentRegistry.IContext<INotebookModel>
  ): IDisposable {
    const checks = new NotebookChecks(panel, context);
    CHECKS.set(panel, checks);
    const button = new ToolbarButton({
      label: 'Check',
      tooltip: 'Check',
      className: 'jp-GraderCheck-button',
      onClick: () => void checks.run(false)
    });
    checks.onChange = () => {
      button.enabled = !checks.busy;
    };
    panel.toolbar.insertItem(10, 'graderCheck', button);
    return new DisposableDelegate(() => {
      button.dispose();
      checks.view.dispose();
    });
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'keras-exercise-grader:check',
  description:
    "A Check button on the notebook's toolbar: the grader's self-check.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, IMainMenu],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    mainMenu: IMainMenu | null
  ) => {
    app.docRegistry.addWidgetExtension('Notebook', new CheckButtonExtension());
    const current = (): NotebookChecks | undefined =>
      tracker.currentWidget ? CHECKS.get(tracker.currentWidget) : undefined;
    app.commands.addCommand('grader:check', {
      label: 'Check Notebook (quick)',
      caption: 'Grade the saved notebook as grader check does, in quick mode',
      isEnabled: () => current() !== undefined,
      execute: () => current()?.run(false)
    });
    app.commands.addCommand('grader:check-full', {
      label: 'Check Notebook (full: trains as written)',
      caption:
        'Grade the saved notebook as grader check --full does: every model trains as written, minutes',
      isEnabled: () => current() !== undefined,
      execute: () => current()?.run(true)
    });
    app.commands.addCommand('grader:cancel-check', {
      label: 'Cancel the Check',
      isEnabled: () => current()?.running != null,
      execute: () => current()?.cancel()
    });
    for (const command of [
      'grader:check',
      'grader:check-full',
      'grader:cancel-check'
    ]) {
      palette?.addItem({ command, category: 'Grader' });
    }
    mainMenu?.runMenu.addGroup(
      [{ command: 'grader:check' }, { command: 'grader:check-full' }],
      100
    );
  }
};

export default plugin;
