/* Name an error code and print the library's version. */
#include <stdio.h>
#include <mproc.h>

int main(void)
{
	printf("mproc %s\n", mproc_version());
	printf("%s\n", mproc_strerror(-MPROC_EEOF));
	return 0;
}
