/** Structured logs: one JSON object per line on stderr, with a level, a time and a message. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Readonly<Record<string, string | number | boolean | undefined | readonly string[]>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/** A logger whose level can change while it runs (SIGHUP). */
export interface LevelledLogger extends Logger {
  setLevel(level: LogLevel): void;
}

export function jsonLogger(
  level: LogLevel,
  base: LogFields = {},
  write: (line: string) => void = (l) => void process.stderr.write(l),
): LevelledLogger {
  let min = LOG_LEVELS.indexOf(level);
  const at =
    (lvl: LogLevel) =>
    (msg: string, fields: LogFields = {}): void => {
      if (LOG_LEVELS.indexOf(lvl) < min) return;
      write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields })}\n`);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    setLevel(next: LogLevel): void {
      min = LOG_LEVELS.indexOf(next);
    },
  };
}
