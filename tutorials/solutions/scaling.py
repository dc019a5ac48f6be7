"""Tutorial 08: merging the running statistics of two processes."""


def merge_moments(count_a, mean_a, var_a, count_b, mean_b, var_b):
    count = count_a + count_b
    if count_a == 0:
        return count_b, mean_b, var_b
    if count_b == 0:
        return count_a, mean_a, var_a
    delta = mean_b - mean_a
    mean = mean_a + delta * count_b / count
    sum_of_squares = var_a * count_a + var_b * count_b + delta**2 * count_a * count_b / count
    return count, mean, sum_of_squares / count
