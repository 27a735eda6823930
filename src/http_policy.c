/*-------------------------------------------------------------------------
 *
 * http_policy.c
 *	  Where http steps may connect: execlog.http_allow and execlog.http_deny.
 *
 * Both settings are comma-separated lists of entries:
 *
 *	10.0.0.0/8, fd00::/8	address ranges (CIDR)
 *	127.0.0.2, ::1			single addresses
 *	api.example.com			a host name
 *	*.example.com			its subdomains (".example.com" means the same)
 *
 * A connection is refused when its address or its host name matches
 * http_deny; when http_allow is not empty, it must match http_allow.  Cloud
 * metadata addresses (169.254.0.0/16, fd00:ec2::254) are refused unless an
 * http_allow entry names them.
 *
 * The checks run at connect time (http_transport.c calls them from libcurl's
 * open-socket callback, with the address the host name resolved to and the
 * host of the URL being fetched), so neither DNS answers nor redirects get
 * around them; the host name of a step's URL is also checked up front, so
 * a step to a denied host fails without being sent.
 *
 * Parsed lists are immutable and reference counted: the worker keeps the
 * connections made under one policy in their own multi handle, and drops
 * them when the settings change (SIGHUP).
 *
 * The check functions are called from libcurl callbacks: they never
 * allocate and never raise errors.
 *
 *-------------------------------------------------------------------------
 */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "utils/memutils.h"

typedef struct PolicyRule
{
	char	   *name;			/* host name rule (lower case); NULL: address */
	bool		suffix;			/* the name's subdomains */
	int			family;			/* AF_INET or AF_INET6 */
	uint8		addr[16];
	int			bits;
} PolicyRule;

struct HttpPolicy
{
	int			refs;
	MemoryContext cxt;
	char	   *allow_src;
	char	   *deny_src;
	PolicyRule *allow;
	int			nallow;
	PolicyRule *deny;
	int			ndeny;
};

/* Addresses of cloud metadata services, refused unless allowed explicitly. */
static const char *const metadata_ranges[] = {"169.254.0.0/16", "fd00:ec2::254/128"};

static HttpPolicy *current_policy = NULL;

/*
 * parse_address
 *		Parse "addr" or "addr/bits" into a rule; false when it is not one.
 */
static bool
parse_address(const char *text, PolicyRule *rule)
{
	char		buf[INET6_ADDRSTRLEN + 8];
	char	   *slash;
	int			maxbits;

	if (strlen(text) >= sizeof(buf))
		return false;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	/* "[::1]" is accepted as well as "::1" */
	if (buf[0] == '[' && buf[strlen(buf) - 1] == ']')
	{
		buf[strlen(buf) - 1] = '\0';
		memmove(buf, buf + 1, strlen(buf));
	}
	memset(rule, 0, sizeof(*rule));
	if (inet_pton(AF_INET, buf, rule->addr) == 1)
	{
		rule->family = AF_INET;
		maxbits = 32;
	}
	else if (inet_pton(AF_INET6, buf, rule->addr) == 1)
	{
		rule->family = AF_INET6;
		maxbits = 128;
	}
	else
		return false;

	rule->bits = maxbits;
	if (slash)
	{
		char	   *end;
		long		bits;

		if (slash[1] == '\0')
			return false;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits < 0 || bits > maxbits)
			return false;
		rule->bits = (int) bits;
	}
	return true;
}

/*
 * parse_entry
 *		Parse one list entry; false when it is neither an address range nor
 *		a host name.  Name rules point into 'text', which the caller keeps.
 */
static bool
parse_entry(char *text, PolicyRule *rule)
{
	char	   *p;

	if (parse_address(text, rule))
		return true;
	if (strchr(text, '/') != NULL || strchr(text, ':') != NULL)
		return false;

	memset(rule, 0, sizeof(*rule));
	if (strncmp(text, "*.", 2) == 0)
	{
		rule->suffix = true;
		text += 2;
	}
	else if (text[0] == '.')
	{
		rule->suffix = true;
		text += 1;
	}
	if (*text == '\0' || strlen(text) > 253)
		return false;
	for (p = text; *p; p++)
	{
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				   *p == '-' || *p == '.' || *p == '_'))
			return false;
	}
	if (text[strlen(text) - 1] == '.')
		text[strlen(text) - 1] = '\0';
	rule->name = text;
	return true;
}

/*
 * parse_list
 *		Split a setting into rules (allocated in the current context); on a
 *		bad entry returns false and points *bad at it.
 */
static bool
parse_list(const char *src, PolicyRule **rules, int *n, char **bad)
{
	char	   *copy = pstrdup(src ? src : "");
	char	   *tok;
	char	   *save = NULL;
	int			cap = 8;

	*rules = palloc(sizeof(PolicyRule) * cap);
	*n = 0;
	for (tok = strtok_r(copy, ", \t\n", &save); tok != NULL;
		 tok = strtok_r(NULL, ", \t\n", &save))
	{
		if (*n == cap)
		{
			cap *= 2;
			*rules = repalloc(*rules, sizeof(PolicyRule) * cap);
		}
		if (!parse_entry(tok, &(*rules)[*n]))
		{
			if (bad)
				*bad = pstrdup(tok);
			return false;
		}
		(*n)++;
	}
	return true;
}

/*
 * execlog_http_list_check
 *		GUC check hook of execlog.http_allow and execlog.http_deny: refuse a
 *		list with an entry that is neither an address range nor a host name.
 */
bool
execlog_http_list_check(char **newval, void **extra, GucSource source)
{
	PolicyRule *rules;
	int			n;
	char	   *bad = NULL;
	bool		ok;

	ok = parse_list(*newval, &rules, &n, &bad);
	if (!ok)
	{
		GUC_check_errdetail("\"%s\" is neither an address, an address range (CIDR) nor a host name.",
							bad);
		GUC_check_errhint("List entries such as 10.0.0.0/8, 127.0.0.2, ::1, api.example.com or *.example.com, separated by commas.");
	}
	pfree(rules);
	return ok;
}

/*
 * execlog_http_policy_current
 *		The policy of the current settings, parsed again when they changed.
 */
HttpPolicy *
execlog_http_policy_current(void)
{
	const char *allow = execlog_http_allow ? execlog_http_allow : "";
	const char *deny = execlog_http_deny ? execlog_http_deny : "";
	MemoryContext cxt;
	MemoryContext old;
	HttpPolicy *p;

	if (current_policy != NULL &&
		strcmp(current_policy->allow_src, allow) == 0 &&
		strcmp(current_policy->deny_src, deny) == 0)
		return current_policy;

	cxt = AllocSetContextCreate(TopMemoryContext, "execlog http policy",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	p = palloc0(sizeof(HttpPolicy));
	p->cxt = cxt;
	p->refs = 1;
	p->allow_src = pstrdup(allow);
	p->deny_src = pstrdup(deny);
	/* the check hook refused bad entries; keep the good ones regardless */
	(void) parse_list(allow, &p->allow, &p->nallow, NULL);
	(void) parse_list(deny, &p->deny, &p->ndeny, NULL);
	MemoryContextSwitchTo(old);

	if (current_policy != NULL)
		execlog_http_policy_release(current_policy);
	current_policy = p;
	return p;
}

void
execlog_http_policy_retain(HttpPolicy *policy)
{
	policy->refs++;
}

void
execlog_http_policy_release(HttpPolicy *policy)
{
	if (--policy->refs == 0)
		MemoryContextDelete(policy->cxt);
}

/* ----------
 * Matching (no allocation, no errors: called from libcurl callbacks)
 * ----------
 */

/* Whether addr (of family) lies in the rule's range. */
static bool
addr_matches(const PolicyRule *rule, int family, const uint8 *addr)
{
	int			full;
	int			rest;

	if (rule->name != NULL || rule->family != family)
		return false;
	full = rule->bits / 8;
	rest = rule->bits % 8;
	if (memcmp(rule->addr, addr, full) != 0)
		return false;
	if (rest)
	{
		uint8		mask = (uint8) (0xff << (8 - rest));

		if ((rule->addr[full] & mask) != (addr[full] & mask))
			return false;
	}
	return true;
}

/* Whether host (lower case) matches the name rule. */
static bool
name_matches(const PolicyRule *rule, const char *host)
{
	size_t		hl;
	size_t		rl;

	if (rule->name == NULL || host == NULL)
		return false;
	if (strcmp(rule->name, host) == 0)
		return true;
	if (!rule->suffix)
		return false;
	hl = strlen(host);
	rl = strlen(rule->name);
	return hl > rl + 1 && host[hl - rl - 1] == '.' &&
		strcmp(host + hl - rl, rule->name) == 0;
}

static bool
any_addr(const PolicyRule *rules, int n, int family, const uint8 *addr)
{
	int			i;

	for (i = 0; i < n; i++)
		if (addr_matches(&rules[i], family, addr))
			return true;
	return false;
}

static bool
any_name(const PolicyRule *rules, int n, const char *host)
{
	int			i;

	for (i = 0; i < n; i++)
		if (name_matches(&rules[i], host))
			return true;
	return false;
}

static bool
has_address_rules(const PolicyRule *rules, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (rules[i].name == NULL)
			return true;
	return false;
}

/*
 * normalize_host
 *		Lower-case copy of a host name without brackets or a final dot into
 *		buf; false when it does not fit.
 */
static bool
normalize_host(const char *host, char *buf, size_t buflen)
{
	size_t		len;
	size_t		i;

	if (host == NULL)
		return false;
	if (host[0] == '[')
		host++;
	len = strlen(host);
	if (len > 0 && host[len - 1] == ']')
		len--;
	if (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len >= buflen)
		return false;
	for (i = 0; i < len; i++)
		buf[i] = (host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 'a' - 'A' : host[i];
	buf[len] = '\0';
	return true;
}

/*
 * check_address
 *		The address check; host (normalized, may be NULL) is the name that
 *		resolved to it.  'shown' names the address in messages.
 */
static bool
check_address(HttpPolicy *policy, const char *host, int family, const uint8 *addr,
			  const char *shown, char *why, size_t whylen)
{
	bool		allowed_explicitly;
	int			i;

	if (any_addr(policy->deny, policy->ndeny, family, addr))
	{
		snprintf(why, whylen, "connection to %s denied by execlog.http_deny", shown);
		return false;
	}
	if (any_name(policy->deny, policy->ndeny, host))
	{
		snprintf(why, whylen, "connection to \"%s\" (%s) denied by execlog.http_deny",
				 host, shown);
		return false;
	}
	allowed_explicitly = any_addr(policy->allow, policy->nallow, family, addr) ||
		any_name(policy->allow, policy->nallow, host);
	for (i = 0; i < (int) lengthof(metadata_ranges); i++)
	{
		PolicyRule	rule;

		if (parse_address(metadata_ranges[i], &rule) &&
			addr_matches(&rule, family, addr) && !allowed_explicitly)
		{
			snprintf(why, whylen,
					 "connection to %s denied: cloud metadata addresses are refused unless listed in execlog.http_allow",
					 shown);
			return false;
		}
	}
	if (policy->nallow > 0 && !allowed_explicitly)
	{
		snprintf(why, whylen, "connection to %s denied: not in execlog.http_allow", shown);
		return false;
	}
	return true;
}

/*
 * execlog_http_policy_check_host
 *		Check the host of a URL before anything is sent: a denied name, and
 *		a literal address, are refused up front.  A name that http_allow can
 *		only accept by its address is checked again when connecting.
 */
bool
execlog_http_policy_check_host(HttpPolicy *policy, const char *host,
							   char *why, size_t whylen)
{
	char		h[256];
	uint8		addr[16];

	if (!normalize_host(host, h, sizeof(h)))
	{
		snprintf(why, whylen, "invalid host name");
		return false;
	}
	if (inet_pton(AF_INET, h, addr) == 1)
		return check_address(policy, NULL, AF_INET, addr, h, why, whylen);
	if (inet_pton(AF_INET6, h, addr) == 1)
	{
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) addr))
			return check_address(policy, NULL, AF_INET, addr + 12, h, why, whylen);
		return check_address(policy, NULL, AF_INET6, addr, h, why, whylen);
	}
	if (any_name(policy->deny, policy->ndeny, h))
	{
		snprintf(why, whylen, "connection to \"%s\" denied by execlog.http_deny", h);
		return false;
	}
	if (policy->nallow > 0 && !any_name(policy->allow, policy->nallow, h) &&
		!has_address_rules(policy->allow, policy->nallow))
	{
		snprintf(why, whylen, "connection to \"%s\" denied: not in execlog.http_allow", h);
		return false;
	}
	return true;
}

/*
 * execlog_http_policy_check_addr
 *		Check an address about to be connected to, with the host name of the
 *		URL being fetched (NULL when unknown).
 */
bool
execlog_http_policy_check_addr(HttpPolicy *policy, const char *host,
							   const struct sockaddr *sa, char *why, size_t whylen)
{
	char		h[256];
	char		shown[INET6_ADDRSTRLEN];
	const char *hp = normalize_host(host, h, sizeof(h)) ? h : NULL;

	if (sa->sa_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) sa;

		inet_ntop(AF_INET, &in->sin_addr, shown, sizeof(shown));
		return check_address(policy, hp, AF_INET, (const uint8 *) &in->sin_addr,
							 shown, why, whylen);
	}
	if (sa->sa_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
		const uint8 *a = (const uint8 *) &in6->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		{
			inet_ntop(AF_INET, a + 12, shown, sizeof(shown));
			return check_address(policy, hp, AF_INET, a + 12, shown, why, whylen);
		}
		inet_ntop(AF_INET6, a, shown, sizeof(shown));
		return check_address(policy, hp, AF_INET6, a, shown, why, whylen);
	}
	snprintf(why, whylen, "connection refused: only IPv4 and IPv6 addresses are allowed");
	return false;
}
