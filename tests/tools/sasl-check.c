/*
 * NAME
 *	sasl-check 1 - authenticate against the stored secrets, in-process
 * SYNOPSIS
 *	sasl-check STATE_DIR USER MECH < password-line
 *	sasl-check -m STATE_DIR
 * DESCRIPTION
 *	A test helper linked with odmr_sasl (odmr_sasl 3h). It starts
 *	libsasl2 exactly as odmrd does (odmr_sasl_init, odmr_sasl_conn_new)
 *	on the sasldb2 of STATE_DIR, plus a libsasl2 client in the same
 *	process, and runs one whole exchange of MECH between the two: the
 *	client authenticates as USER with the password read as one line on
 *	standard input (its LF or CR LF stripped). This proves that what
 *	odmrctl stored serves that mechanism: for SCRAM the client checks
 *	the server's signature too.
 *
 *	It prints one line: "ok user=NAME" with the account name that
 *	odmr_sasl_account() derives from SASL_USERNAME, or "fail
 *	result=NAME" with the libsasl2 result that ended the exchange
 *	(BADAUTH for a wrong password, NOUSER for an unknown user, ...).
 *
 *	-m checks that every mechanism of ODMR_SASL_MECHS is installed.
 * DIAGNOSTICS
 *	Exit 0 when the server accepted USER and NAME is USER's account
 *	name (USER without a trailing "@odmr"), 1 when it
 *	refused, 2 for usage errors, 3 for anything else.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>

#include "odmr_sasl.h"

#define SASL_CHECK_ROUNDS	16	/* no mechanism here needs more */
#define SASL_CHECK_CB(fn)	((int (*)(void))(void (*)(void))(fn))

static const char *sasl_check_user;
static sasl_secret_t *sasl_check_secret;

/* sasl_check_name - the name of a libsasl2 result */
static const char *
sasl_check_name(int r)
{
	static char other[32];

	switch (r) {
	case SASL_OK:		return "OK";
	case SASL_CONTINUE:	return "CONTINUE";
	case SASL_FAIL:		return "FAIL";
	case SASL_NOMEM:	return "NOMEM";
	case SASL_NOMECH:	return "NOMECH";
	case SASL_BADPROT:	return "BADPROT";
	case SASL_BADPARAM:	return "BADPARAM";
	case SASL_INTERACT:	return "INTERACT";
	case SASL_BADSERV:	return "BADSERV";
	case SASL_BADAUTH:	return "BADAUTH";
	case SASL_NOAUTHZ:	return "NOAUTHZ";
	case SASL_TOOWEAK:	return "TOOWEAK";
	case SASL_ENCRYPT:	return "ENCRYPT";
	case SASL_DISABLED:	return "DISABLED";
	case SASL_NOUSER:	return "NOUSER";
	case SASL_NOVERIFY:	return "NOVERIFY";
	}
	snprintf(other, sizeof(other), "%d", r);
	return other;
}

/* sasl_check_simple - SASL_CB_AUTHNAME and SASL_CB_USER of the client */
static int
sasl_check_simple(void *context, int id, const char **result, unsigned *len)
{
	(void)context;
	/* authenticate as USER; an empty authzid means the same */
	*result = id == SASL_CB_AUTHNAME ? sasl_check_user : "";
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

/* sasl_check_pass - SASL_CB_PASS of the client */
static int
sasl_check_pass(sasl_conn_t *conn, void *context, int id,
    sasl_secret_t **psecret)
{
	(void)conn;
	(void)context;
	(void)id;
	*psecret = sasl_check_secret;
	return SASL_OK;
}

static const sasl_callback_t sasl_check_client_cbs[] = {
	{ SASL_CB_AUTHNAME, SASL_CHECK_CB(sasl_check_simple), NULL },
	{ SASL_CB_USER, SASL_CHECK_CB(sasl_check_simple), NULL },
	{ SASL_CB_PASS, SASL_CHECK_CB(sasl_check_pass), NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

/* sasl_check_read_pass - the password line of stdin into the secret */
static int
sasl_check_read_pass(void)
{
	char line[ODMR_SASL_PASS_MAX + 3];
	size_t len;

	if (fgets(line, sizeof(line), stdin) == NULL)
		return -1;
	len = strlen(line);
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	sasl_check_secret = calloc(1, sizeof(*sasl_check_secret) + len + 1);
	if (sasl_check_secret == NULL)
		return -1;
	sasl_check_secret->len = len;
	memcpy(sasl_check_secret->data, line, len);
	return 0;
}

/*
 * sasl_check_exchange - one whole exchange of mech between client c and
 * server s; the server's last result
 */
static int
sasl_check_exchange(sasl_conn_t *c, sasl_conn_t *s, const char *mech,
    int *client_r)
{
	const char *cout = NULL, *sout = NULL, *chosen = NULL;
	unsigned coutlen = 0, soutlen = 0;
	int cr, sr, round;

	cr = sasl_client_start(c, mech, NULL, &cout, &coutlen, &chosen);
	*client_r = cr;
	if (cr != SASL_OK && cr != SASL_CONTINUE)
		return SASL_FAIL;
	sr = sasl_server_start(s, mech, cout, coutlen, &sout, &soutlen);
	for (round = 0; sr == SASL_CONTINUE && round < SASL_CHECK_ROUNDS;
	    round++) {
		cr = sasl_client_step(c, sout, soutlen, NULL, &cout, &coutlen);
		*client_r = cr;
		if (cr != SASL_OK && cr != SASL_CONTINUE)
			return SASL_FAIL;
		sr = sasl_server_step(s, cout, coutlen, &sout, &soutlen);
	}
	/* SCRAM: the client checks the server's final message */
	if (sr == SASL_OK && cr == SASL_CONTINUE) {
		cr = sasl_client_step(c, sout, soutlen, NULL, &cout, &coutlen);
		*client_r = cr;
	}
	return sr;
}

/* main - check the mechanisms, or authenticate once */
int
main(int argc, char **argv)
{
	sasl_conn_t *s = NULL, *c = NULL;
	const void *username = NULL;
	char *error = NULL, account[ODMR_SASL_USER_MAX + 1];
	char want[ODMR_SASL_USER_MAX + 1];
	int sr, cr = SASL_OK, rc;

	if (argc == 3 && strcmp(argv[1], "-m") == 0) {
		if (odmr_sasl_init(argv[2], "sasl-check", &error) < 0 ||
		    odmr_sasl_check_mechs(&error) < 0) {
			fprintf(stderr, "sasl-check: %s\n", error);
			free(error);
			odmr_sasl_done();
			return 3;
		}
		printf("ok mechanisms=%s\n", ODMR_SASL_MECHS);
		odmr_sasl_done();
		return 0;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: sasl-check STATE_DIR USER MECH "
		    "< password\n       sasl-check -m STATE_DIR\n");
		return 2;
	}
	sasl_check_user = argv[2];
	if (sasl_check_read_pass() < 0) {
		fprintf(stderr, "sasl-check: no password on stdin\n");
		return 2;
	}
	if (odmr_sasl_init(argv[1], "sasl-check", &error) < 0 ||
	    odmr_sasl_conn_new("smtp", "localhost", NULL, NULL, &s,
	    &error) < 0) {
		fprintf(stderr, "sasl-check: %s\n", error);
		free(error);
		odmr_sasl_done();
		free(sasl_check_secret);
		return 3;
	}
	if ((sr = sasl_client_init(NULL)) != SASL_OK ||
	    (sr = sasl_client_new("smtp", "localhost", NULL, NULL,
	    sasl_check_client_cbs, 0, &c)) != SASL_OK) {
		fprintf(stderr, "sasl-check: libsasl2 client: %s\n",
		    sasl_errstring(sr, NULL, NULL));
		return 3;
	}
	sr = sasl_check_exchange(c, s, argv[3], &cr);
	if (sr == SASL_OK && cr == SASL_OK &&
	    sasl_getprop(s, SASL_USERNAME, &username) == SASL_OK &&
	    username != NULL) {
		if (odmr_sasl_account(username, account, sizeof(account)) < 0) {
			printf("fail username=%s is no account name\n",
			    (const char *)username);
			rc = 3;
		} else {
			printf("ok user=%s\n", account);
			/* "alice@odmr" authenticates as alice */
			if (odmr_sasl_account(sasl_check_user, want,
			    sizeof(want)) < 0)
				rc = 3;
			else
				rc = strcmp(account, want) == 0 ? 0 : 3;
		}
	} else if (sr == SASL_OK || sr == SASL_CONTINUE) {
		printf("fail client=%s server=%s\n", sasl_check_name(cr),
		    sasl_check_name(sr));
		rc = 3;
	} else if (sr == SASL_FAIL && cr != SASL_OK && cr != SASL_CONTINUE) {
		printf("fail client=%s (%s)\n", sasl_check_name(cr),
		    sasl_errdetail(c));
		rc = 3;
	} else {
		printf("fail result=%s\n", sasl_check_name(sr));
		rc = sr == SASL_BADAUTH || sr == SASL_NOUSER ? 1 : 3;
	}
	sasl_dispose(&c);
	sasl_dispose(&s);
	sasl_client_done();
	odmr_sasl_done();
	free(sasl_check_secret);
	return rc;
}
