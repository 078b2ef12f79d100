/* strapontin's main(): the program is cli_main() (cli.c), in a library
 * that the fuzz harnesses link without this file. */
#include "cli.h"

int
main(int argc, char **argv)
{
	return cli_main(argc, argv);
}
