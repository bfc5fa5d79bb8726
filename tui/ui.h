/* The workbench: `hasten`, `hasten ui [RECIPE]` and `hasten demo` open an ncurses UI with live
 * loss-versus-wall-clock plots against a baseline, a run queue, the plugin catalogue, the
 * step-time breakdown and a log. Not for headless runs (tui/main.c's `run`). */
#ifndef HASTEN_UI_H
#define HASTEN_UI_H

/* Parses the options of `hasten ui` (demo = 0) or `hasten demo` (demo = 1); argv[0] is the
 * command word, or the program name for a bare `hasten [options]`. Opens the workbench and
 * returns an exit code: 0 after quitting, 2 for bad usage, a missing recipe or no terminal,
 * 1 when the terminal cannot be set up. */
int ui_cmd(int argc, char **argv, int demo);

#endif
