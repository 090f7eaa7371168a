/* Small helpers: drop-reason names, MAC parsing, name validation. Pure functions, any thread. */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const drop_names[] = {
#define X_(e, name, help) name,
    VSW_DROP_REASONS(X_)
#undef X_
};
static const char *const drop_helps[] = {
#define X_(e, name, help) help,
    VSW_DROP_REASONS(X_)
#undef X_
};

const char *vsw_drop_name(unsigned reason)
{
    return reason < VSW_DROP__COUNT ? drop_names[reason] : "?";
}

const char *vsw_drop_help(unsigned reason)
{
    return reason < VSW_DROP__COUNT ? drop_helps[reason] : "?";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int vsw_mac_parse(const char *s, struct vsw_mac *out)
{
    if (!s || strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[i * 3]), lo = hexval(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
            return -EINVAL;
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

char *vsw_mac_format(const struct vsw_mac *m, char *buf)
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m->b[0], m->b[1], m->b[2], m->b[3], m->b[4],
             m->b[5]);
    return buf;
}

bool vsw_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= VSW_NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}
