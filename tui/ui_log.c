/* The log pane's lines: a small ring any thread may append to (the worker's notices, run
 * failures, plugin log lines read from log.txt). Not for files: runs keep their own log.txt. */
#include "tui/ui_runs.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ui_log_init(ui_log *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
}

void ui_log_destroy(ui_log *l) { pthread_mutex_destroy(&l->mu); }

void ui_log_add(ui_log *l, int level, const char *fmt, ...)
{
    char line[UI_LOG_WIDTH];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    pthread_mutex_lock(&l->mu);
    int slot = (int)(l->total % UI_LOG_LINES);
    memcpy(l->text[slot], line, sizeof line);
    l->level[slot] = (uint8_t)level;
    l->total++;
    pthread_mutex_unlock(&l->mu);
}

int ui_log_last(ui_log *l, int max, char (*text)[UI_LOG_WIDTH], uint8_t *level)
{
    pthread_mutex_lock(&l->mu);
    long have = l->total < UI_LOG_LINES ? l->total : UI_LOG_LINES;
    int n = max < have ? max : (int)have;
    for (int i = 0; i < n; i++) {
        int slot = (int)((l->total - n + i) % UI_LOG_LINES);
        memcpy(text[i], l->text[slot], UI_LOG_WIDTH);
        level[i] = l->level[slot];
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

void ui_log_progress_set(ui_log *l, const char *text)
{
    pthread_mutex_lock(&l->mu);
    snprintf(l->progress, sizeof l->progress, "%s", text);
    pthread_mutex_unlock(&l->mu);
}

void ui_log_progress_get(ui_log *l, char *out, size_t len)
{
    pthread_mutex_lock(&l->mu);
    snprintf(out, len, "%s", l->progress);
    pthread_mutex_unlock(&l->mu);
}

long ui_log_total(ui_log *l)
{
    pthread_mutex_lock(&l->mu);
    long n = l->total;
    pthread_mutex_unlock(&l->mu);
    return n;
}
