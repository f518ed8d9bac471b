#include <stdio.h>

#ifndef GREETING
#define GREETING "hello"
#endif

int main(void)
{
	printf("%s from criu-forge\n", GREETING);
	return 0;
}
