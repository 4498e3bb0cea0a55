/* no_entry_udf.c — a shared object that is not a Sluice plugin (it does
 * not export sluice_plugin): Sluice must refuse it, saying so. */
int not_a_plugin(int x);
int not_a_plugin(int x)
{
    return x + 1;
}
