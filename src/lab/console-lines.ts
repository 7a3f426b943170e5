/**
 * Turns a serial console byte stream (SeaBIOS, iPXE, OVMF, an MBR program, Linux) into the
 * lines a person would see on an 80-column terminal, incrementally: chunks may split anywhere,
 * even inside an escape sequence. Pure: no clocks, no I/O.
 *
 * What it emulates, and why:
 * - ANSI/VT100 escape sequences (`ESC c`, `ESC [ 0;1m`, `ESC [ 2J`, `ESC [ ? 7l`) are dropped;
 *   `ESC [ K` erases to the end of the line, `ESC [ n D`/`C` move the cursor; cursor positioning (`ESC [ row;col H`, used by
 *   OVMF) ends the current line.
 * - `\b` moves the cursor left and later characters overwrite: iPXE erases its
 *   "Press Ctrl-B ..." prompt with `\b \b` and prints the NIC line over it.
 * - `\r` returns to column 0 (later text overwrites), `\n` ends the line.
 * - iPXE wraps at 80 columns with CRLF ("... (http://ipxe.org/2d12603" / "b)"): a line that
 *   ends exactly at the wrap width is joined with the next one into one logical line.
 */
export interface ConsoleLinesOptions {
  /** Terminal width at which the firmware wraps lines; 0 disables joining. Default 80. */
  readonly wrapWidth?: number;
}

/** Default terminal width of SeaBIOS/iPXE serial output. */
export const DEFAULT_WRAP_WIDTH = 80;

/** What `ConsoleLines.write` reports for one chunk. */
export interface ConsoleLinesUpdate {
  /** Logical lines completed by this chunk (wrapped lines already joined), in order. */
  readonly completed: string[];
  /** The logical line in progress after this chunk: completed prefix + visible partial text. */
  readonly partial: string;
  /**
   * Every moment a line is worth matching, in stream order: the logical line at each `\r`
   * (text before it may be overwritten next) and each completed line.
   */
  readonly snapshots: string[];
}

const ESC = '\x1b';

/** Escape parser states: plain text, after ESC, inside a CSI (`ESC [`) sequence. */
const enum EscState {
  Text,
  Escape,
  Csi,
}

/**
 * Incremental console-to-lines decoder. One instance per console stream; `write` each chunk in
 * arrival order, `flush` at the end. Cost is linear in the input.
 */
export class ConsoleLines {
  readonly #wrapWidth: number;
  #cells: string[] = [];
  #col = 0;
  #wrapped = '';
  #esc: EscState = EscState.Text;
  #csiParams = '';

  constructor(options: ConsoleLinesOptions = {}) {
    this.#wrapWidth = options.wrapWidth ?? DEFAULT_WRAP_WIDTH;
  }

  /** Feeds one chunk of console text (latin1/utf8 decoded by the caller). */
  write(chunk: string): ConsoleLinesUpdate {
    const completed: string[] = [];
    const snapshots: string[] = [];
    for (const ch of chunk) {
      switch (this.#esc) {
        case EscState.Escape:
          this.#esc = ch === '[' ? EscState.Csi : EscState.Text;
          this.#csiParams = '';
          continue;
        case EscState.Csi:
          if (ch >= '@' && ch <= '~') {
            this.#esc = EscState.Text;
            const done = this.#csi(ch);
            if (done !== undefined) {
              completed.push(done);
              snapshots.push(done);
            }
          } else {
            this.#csiParams += ch;
          }
          continue;
        case EscState.Text:
          break;
      }
      if (ch === ESC) {
        this.#esc = EscState.Escape;
      } else if (ch === '\n') {
        const done = this.#endLine();
        if (done !== undefined) {
          completed.push(done);
          snapshots.push(done);
        }
      } else if (ch === '\r') {
        snapshots.push(this.#logical());
        this.#col = 0;
      } else if (ch === '\b') {
        if (this.#col > 0) this.#col--;
      } else if (ch === '\t') {
        const next = (Math.floor(this.#col / 8) + 1) * 8;
        while (this.#col < next) this.#put(' ');
      } else if (ch >= ' ' && ch !== '\x7f') {
        this.#put(ch);
      }
    }
    return { completed, partial: this.#logical(), snapshots };
  }

  /** Ends the stream: returns the last logical line if anything is pending. */
  flush(): string | undefined {
    const last = this.#logical();
    this.#cells = [];
    this.#col = 0;
    this.#wrapped = '';
    return last.trim() === '' ? undefined : last;
  }

  #put(ch: string): void {
    this.#cells[this.#col] = ch;
    this.#col++;
  }

  /** The cells as printed, trailing blanks included (a wrapped line may end in a space). */
  #raw(): string {
    let s = '';
    for (let i = 0; i < this.#cells.length; i++) s += this.#cells[i] ?? ' ';
    return s;
  }

  #visible(): string {
    return this.#raw().replace(/\s+$/, '');
  }

  #logical(): string {
    return this.#wrapped + this.#visible();
  }

  /** Ends a physical line; returns the logical line unless it wraps onto the next one. */
  #endLine(): string | undefined {
    const raw = this.#raw();
    this.#cells = [];
    this.#col = 0;
    // A physical line filled to the wrap width continues on the next one.
    if (this.#wrapWidth > 0 && raw.length === this.#wrapWidth) {
      this.#wrapped += raw;
      return undefined;
    }
    const line = this.#wrapped + raw.replace(/\s+$/, '');
    this.#wrapped = '';
    return line;
  }

  /** Applies a CSI sequence; returns a line it ended (cursor positioning), if any. */
  #csi(final: string): string | undefined {
    if (final === 'K') {
      // Erase in line: 0 (default) to end, 1 to start, 2 whole line.
      const mode = this.#csiParams === '' ? 0 : Number(this.#csiParams);
      if (mode === 0) this.#cells.length = Math.min(this.#cells.length, this.#col);
      else if (mode === 1) for (let i = 0; i <= this.#col && i < this.#cells.length; i++) this.#cells[i] = ' ';
      else this.#cells = [];
    } else if (final === 'D' || final === 'C') {
      // Cursor back / forward by n columns (default 1).
      const n = this.#csiParams === '' ? 1 : Number(this.#csiParams);
      if (Number.isInteger(n)) this.#col = Math.max(0, this.#col + (final === 'D' ? -n : n));
    } else if (final === 'H' || final === 'f') {
      // Cursor positioning: treat as the start of a new screen line at the given column.
      const text = this.#logical();
      this.#cells = [];
      this.#wrapped = '';
      const col = Number(this.#csiParams.split(';')[1] ?? '1');
      this.#col = Number.isInteger(col) && col > 1 ? col - 1 : 0;
      return text.trim() === '' ? undefined : text;
    }
    // Colours (m), clears (J), modes (h/l) and everything else carry no text.
    return undefined;
  }
}
