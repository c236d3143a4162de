/* Floating point as the compiler generates it (SSE2 on x86-64): sums 1/k^2 for k = 1..N, which
 * tends to pi^2/6, yielding the CPU every 1000 terms, and checks sqrt(6 * sum) against pi.
 * Run two at once to check that each process keeps its own SSE registers across switches.
 * Prints the result; exits 0 iff it is right. */
#include <math.h>
#include <sched.h>
#include <stdio.h>

int main(void)
{
	const int n = 1000000;
	volatile double sum = 0.0; /* volatile: kept in memory and in xmm registers in turn */
	for (int k = n; k >= 1; k--) { /* smallest terms first, for accuracy */
		sum += 1.0 / ((double)k * (double)k);
		if (k % 1000 == 0)
			sched_yield();
	}
	double pi = sqrt(6.0 * sum);
	double err = fabs(pi - 3.14159265358979323846);
	printf("fpmath: pi ~ %.9f (error %.3g)\n", pi, err);
	return err < 1e-5 ? 0 : 1;
}
